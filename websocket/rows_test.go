package websocket_test

// Every row of STATE_MACHINE.md's transition table has a behaviour test
// that names it, so that a newcomer who reads a row can find the tests of
// it, and a row nobody tests shows up as a failure rather than as silence.
// A test names its rows in its doc comment, on a line of its own:
//
//	// Rows: K4, K8.
//	// Rows: O7; "Frame checks": RSV1 on a control frame.
//
// The table test (TestStepImplementsTransitionTable) checks every row
// against step and does not count: it shows that the code says what the
// table says, not that the connection behaves so.

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/wsmachine/wsmachine/model"
)

var rowsList = flag.Bool("rows.list", false, "print every row of STATE_MACHINE.md with the tests that name it (make rows)")

// rowsNotBehaviour are the tests whose Rows line, if any, does not count.
var rowsNotBehaviour = map[string]bool{"TestStepImplementsTransitionTable": true}

// rowID is a transition table row's ID as a Rows line writes it.
var rowID = regexp.MustCompile(`\b[COKT][0-9]{1,2}\b`)

// namedTest is a test function and where it is.
type namedTest struct{ file, name string }

// testsByRow reads the Test and Fuzz functions of dirs' test files and
// returns, for each row ID their Rows lines name, the tests that name it,
// and the tests that name none.
func testsByRow(t *testing.T, dirs ...string) (byRow map[string][]namedTest, none []namedTest) {
	t.Helper()
	byRow = map[string][]namedTest{}
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no test files in %s: %v", dir, err)
		}
		for _, path := range files {
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Recv != nil {
					continue
				}
				name := fd.Name.Name
				if name == "TestMain" || rowsNotBehaviour[name] ||
					!(strings.HasPrefix(name, "Test") || strings.HasPrefix(name, "Fuzz")) {
					continue
				}
				// The path from the repository's root, as a reader looks for it.
				test := namedTest{filepath.ToSlash(filepath.Join("websocket", path)), name}
				ids := rowsLine(fd.Doc)
				if len(ids) == 0 {
					none = append(none, test)
				}
				for _, id := range ids {
					byRow[id] = append(byRow[id], test)
				}
			}
		}
	}
	return byRow, none
}

// rowsLine returns the row IDs of a doc comment's Rows paragraph: from the
// line that starts with "Rows:" to the next blank line.
func rowsLine(doc *ast.CommentGroup) []string {
	if doc == nil {
		return nil
	}
	var ids []string
	in := false
	for _, line := range strings.Split(doc.Text(), "\n") {
		if strings.HasPrefix(line, "Rows:") {
			in = true
		} else if strings.TrimSpace(line) == "" {
			in = false
		}
		if in {
			ids = append(ids, rowID.FindAllString(line, -1)...)
		}
	}
	return ids
}

func TestEveryRowHasATest(t *testing.T) {
	rows, err := model.ReadTable("../STATE_MACHINE.md")
	if err != nil {
		t.Fatal(err)
	}
	byRow, none := testsByRow(t, ".", "internal/core", "internal/coretest", "../fuzz")
	known := map[string]bool{}
	var out strings.Builder
	for _, r := range rows {
		known[r.ID] = true
		tests := byRow[r.ID]
		if len(tests) == 0 {
			t.Errorf("row %s (%s, %v → %s) is named by no test: name it in the Rows line of the tests that exercise it, or write one", r.ID, r.From, r.Events, r.To)
		}
		inputs := "*"
		if len(r.Events) > 0 {
			inputs = fmt.Sprint(r.Events)
			inputs = strings.Trim(inputs, "[]")
		}
		fmt.Fprintf(&out, "%s  %s, %s → %s\n", r.ID, r.From, inputs, r.To)
		sort.Slice(tests, func(i, j int) bool {
			return tests[i].file+tests[i].name < tests[j].file+tests[j].name
		})
		for _, test := range tests {
			fmt.Fprintf(&out, "\t%-36s %s\n", test.file, test.name)
		}
	}
	for id, tests := range byRow {
		if !known[id] {
			t.Errorf("%s name row %s, which STATE_MACHINE.md's transition table does not have", tests[0].name, id)
		}
	}
	if len(none) > 0 {
		fmt.Fprintf(&out, "\nTests that name no row (codecs, helpers, properties, performance):\n")
		for _, test := range none {
			fmt.Fprintf(&out, "\t%-36s %s\n", test.file, test.name)
		}
	}
	if *rowsList {
		fmt.Print(out.String())
	}
}
