package model

import (
	"bufio"
	"os"
	"reflect"
	"strings"
	"testing"
)

// readTable parses the transition table of STATE_MACHINE.md into rows.
func readTable(t *testing.T) []Row {
	t.Helper()
	f, err := os.Open("../STATE_MACHINE.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []Row
	inTable := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "| ID | From | Event | Guard | To |") {
			inTable = true
			continue
		}
		if !inTable || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) != 10 {
			t.Fatalf("row %q: %d cells, want 10", line, len(cells))
		}
		var inputs []Input
		if cells[2] != "*" {
			for _, name := range strings.Split(cells[2], ", ") {
				inputs = append(inputs, Input(name))
			}
		}
		rows = append(rows, Row{ID: cells[0], From: State(cells[1]), Inputs: inputs, To: State(cells[4]),
			Frames: cells[5], TCP: cells[6], Caller: cells[7]})
	}
	return rows
}

// TestTableIsStateMachineMD checks that the model's table is the one in
// STATE_MACHINE.md: no row missing, none extra, every cell the same.
func TestTableIsStateMachineMD(t *testing.T) {
	doc := readTable(t)
	if len(doc) == 0 {
		t.Fatal("no transition table in STATE_MACHINE.md")
	}
	byID := map[string]Row{}
	for _, r := range Table {
		byID[r.ID] = r
	}
	for _, d := range doc {
		m, ok := byID[d.ID]
		if !ok {
			t.Errorf("row %s of STATE_MACHINE.md is missing from the model", d.ID)
			continue
		}
		delete(byID, d.ID)
		if !reflect.DeepEqual(m, d) {
			t.Errorf("row %s differs:\n model %+v\n doc   %+v", d.ID, m, d)
		}
	}
	for id := range byID {
		t.Errorf("row %s of the model is not in STATE_MACHINE.md", id)
	}
}

// TestTableCoversEveryPairOnce checks that Lookup is total and unambiguous.
func TestTableCoversEveryPairOnce(t *testing.T) {
	for _, s := range []State{Connecting, Open, Closing, Closed, Dropped} {
		for _, in := range Inputs {
			n := 0
			for _, r := range Table {
				if r.From != s {
					continue
				}
				if r.Inputs == nil {
					n++
				}
				for _, x := range r.Inputs {
					if x == in {
						n++
					}
				}
			}
			if n != 1 {
				t.Errorf("%s × %s: %d rows", s, in, n)
			}
		}
	}
}
