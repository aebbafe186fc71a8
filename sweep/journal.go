package sweep

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// A journal is JSON lines: the header (header.go), then one line per finished job,
// with its result in the most readable form that gives back the same bytes:
//
//	{"banfleet_sweep":1,"jobs":2,"ids":"…","types":"…","payloads":"…","description":"…"}
//	{"id":"job-1","result":{"sharpe":1.2}}   a result that is compact JSON, as it is
//	{"id":"job-2","text":"OK"}               a result that is other UTF-8 text
//	{"id":"job-3","base64":"AAEC"}           a binary result
//
// A line torn by a crash mid-write is the last one; it is dropped, and cut off before
// the next line is appended.

// maxJournalLine bounds a journal line read back: 256 MiB, room for a result of
// banio's largest frame in base64.
const maxJournalLine = 256 << 20

// entry is a result line of the journal; exactly one of Result, Text, Base64 is set.
type entry struct {
	ID     string          `json:"id"`
	Result json.RawMessage `json:"result,omitempty"`
	Text   *string         `json:"text,omitempty"`
	Base64 *string         `json:"base64,omitempty"`
}

// journalWriter appends results to an open journal. Its caller serialises calls.
type journalWriter struct {
	path string
	f    *os.File
}

// openJournal opens the journal at path for the sweep that h identifies, creating it
// with h as its header if it does not exist or is empty, and returns the results it
// holds. A journal of another sweep is refused with ErrJournalMismatch.
func openJournal(path string, h header) (*journalWriter, map[string][]byte, error) {
	finished, size, err := readJournal(path, h)
	if err != nil {
		return nil, nil, err
	}
	if size == 0 {
		if err := createJournal(path, h); err != nil {
			return nil, nil, fmt.Errorf("sweep: create journal: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("sweep: journal: %w", err)
	}
	if size > 0 {
		// Drop a torn last line, so that the next line does not run into it.
		if err := f.Truncate(size); err != nil {
			_ = f.Close()
			return nil, nil, fmt.Errorf("sweep: journal %s: %w", path, err)
		}
	}
	return &journalWriter{path: path, f: f}, finished, nil
}

// createJournal writes a journal holding only h, in one rename, so that a journal
// exists only with its whole header.
func createJournal(path string, h header) error {
	line, err := json.Marshal(h)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(line, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}

// readJournal checks the journal at path against h and loads its results. size is the
// length of its complete lines, 0 when there is no journal yet.
func readJournal(path string, want header) (finished map[string][]byte, size int64, err error) {
	finished = map[string][]byte{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return finished, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("sweep: journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		line, complete, err := readLine(r)
		if err != nil {
			return nil, 0, fmt.Errorf("sweep: journal %s line %d: %w", path, n, err)
		}
		if !complete {
			return finished, size, nil // the end, or a torn last line
		}
		if n == 1 {
			if err := checkHeader(path, line, want); err != nil {
				return nil, 0, err
			}
		} else {
			id, result, err := decodeEntry(line)
			if err != nil {
				return nil, 0, fmt.Errorf("sweep: journal %s line %d is damaged (%v): use another journal file, or remove this one to run the sweep from the start", path, n, err)
			}
			finished[id] = result
		}
		size += int64(len(line)) + 1
	}
}

// readLine reads one line without its newline; complete is false at the end of the
// file, where line is what follows the last newline (a torn line, or nothing).
func readLine(r *bufio.Reader) (line []byte, complete bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > maxJournalLine {
			return nil, false, fmt.Errorf("longer than %d bytes: not a sweep journal", maxJournalLine)
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line[:len(line)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return line, false, nil
		default:
			return nil, false, err
		}
	}
}

// checkHeader refuses a journal whose first line is not want.
func checkHeader(path string, line []byte, want header) error {
	var got header
	if json.Unmarshal(line, &got) != nil || got.Format == 0 {
		var e entry
		if json.Unmarshal(line, &e) == nil && e.ID != "" {
			return fmt.Errorf("%w: %s has no header: it was written by an older banfleet, which did not record which sweep it belongs to, so it cannot be checked against this one; use another journal file, or remove this one to run the sweep from the start", ErrJournalMismatch, path)
		}
		return fmt.Errorf("%w: %s is not a sweep journal (its first line is no journal header); name another journal file", ErrJournalMismatch, path)
	}
	if d := want.differences(got); d != "" {
		return fmt.Errorf("%w: %s was written by another sweep: %s; use another journal file, or remove this one to run the sweep from the start", ErrJournalMismatch, path, d)
	}
	return nil
}

// decodeEntry decodes a result line.
func decodeEntry(line []byte) (id string, result []byte, err error) {
	var e entry
	if err := json.Unmarshal(line, &e); err != nil {
		return "", nil, err
	}
	switch {
	case e.ID == "":
		return "", nil, errors.New("no job id")
	case e.Result != nil:
		return e.ID, e.Result, nil
	case e.Text != nil:
		return e.ID, []byte(*e.Text), nil
	case e.Base64 != nil:
		b, err := base64.StdEncoding.DecodeString(*e.Base64)
		return e.ID, b, err
	}
	return "", nil, fmt.Errorf("job %s has no result, text or base64", e.ID)
}

// encodeEntry is the journal line of a result, without its newline.
func encodeEntry(id string, result []byte) []byte {
	quoted, _ := json.Marshal(id) // a string always marshals
	line := append([]byte(`{"id":`), quoted...)
	switch {
	case isCompactJSON(result):
		// As it is: Marshal would escape HTML characters, and replay must give back
		// the same bytes.
		line = append(line, `,"result":`...)
		line = append(line, result...)
	case utf8.Valid(result):
		text, _ := json.Marshal(string(result)) // a string always marshals
		line = append(line, `,"text":`...)
		line = append(line, text...)
	default:
		line = append(line, `,"base64":"`...)
		line = base64.StdEncoding.AppendEncode(line, result)
		line = append(line, '"')
	}
	return append(line, '}')
}

// isCompactJSON reports whether b is JSON with no insignificant white space, which a
// journal line can hold as it is.
func isCompactJSON(b []byte) bool {
	if len(b) == 0 || !json.Valid(b) {
		return false
	}
	var buf bytes.Buffer
	buf.Grow(len(b))
	return json.Compact(&buf, b) == nil && bytes.Equal(buf.Bytes(), b)
}

// append writes one result line.
func (j *journalWriter) append(id string, result []byte) error {
	if _, err := j.f.Write(append(encodeEntry(id, result), '\n')); err != nil {
		return fmt.Errorf("sweep: journal %s: %w", j.path, err)
	}
	return nil
}

func (j *journalWriter) close() error {
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("sweep: journal %s: %w", j.path, err)
	}
	return nil
}
