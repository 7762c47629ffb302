package model

import (
	"reflect"
	"testing"
)

// TestTableIsStateMachineMD checks that the model's table is the one in
// STATE_MACHINE.md: no row missing, none extra, every cell the same.
func TestTableIsStateMachineMD(t *testing.T) {
	doc, err := ReadTable("../STATE_MACHINE.md")
	if err != nil {
		t.Fatal(err)
	}
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
		for _, in := range Events {
			n := 0
			for _, r := range Table {
				if r.From != s {
					continue
				}
				if r.Events == nil {
					n++
				}
				for _, x := range r.Events {
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
