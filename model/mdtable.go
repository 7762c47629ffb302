package model

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// ReadTable parses the transition table of STATE_MACHINE.md (the one whose
// header starts "| ID | From | Event | Guard | To |") into rows, so that
// tests can hold the model and the library to the document itself.
func ReadTable(path string) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
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
			return nil, fmt.Errorf("%s: row %q has %d cells, want 10", path, line, len(cells))
		}
		var events []Event
		if cells[2] != "*" {
			for _, name := range strings.Split(cells[2], ", ") {
				events = append(events, Event(name))
			}
		}
		rows = append(rows, Row{ID: cells[0], From: State(cells[1]), Events: events, To: State(cells[4]),
			Frames: FramesCell(cells[5]), TCP: TCPCell(cells[6]), Caller: CallerCell(cells[7])})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no transition table", path)
	}
	return rows, nil
}
