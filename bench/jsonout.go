package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// writeJSON writes r, with every raw repeat, to path as indented JSON.
func writeJSON(path string, r Report) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	data = append(data, '\n')
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
