package sweep

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
)

func testJobs(payload string) []dispatch.Job {
	return []dispatch.Job{
		{ID: "a", Type: "sq", Payload: payload + "1"},
		{ID: "b", Type: "sq", Payload: payload + "2"},
	}
}

func mustHeader(t *testing.T, jobs []dispatch.Job, desc string) header {
	t.Helper()
	h, err := newHeader(jobs, desc)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Every result comes back from its line byte for byte, in the most readable field
// that can hold it.
func TestJournalEntryRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name, field string
		result      []byte
	}{
		{"compact JSON", `"result":`, []byte(`{"sharpe":1.5,"note":"<a&b>"}`)},
		{"JSON string", `"result":`, []byte(`"x"`)},
		{"JSON null", `"result":`, []byte(`null`)},
		{"indented JSON", `"text":`, []byte("{\n  \"a\": 1\n}\n")},
		{"JSON number", `"result":`, []byte("49")},
		{"text", `"text":`, []byte("OK <done>")},
		{"text with a newline", `"text":`, []byte("line one\nline two")},
		{"empty", `"text":`, nil},
		{"binary", `"base64":`, []byte{0, 1, 2, 0xff, 0xfe}},
	} {
		line := encodeEntry("job-1", c.result)
		if bytes.ContainsRune(line, '\n') {
			t.Errorf("%s: the line holds a newline: %s", c.name, line)
		}
		if !bytes.Contains(line, []byte(c.field)) {
			t.Errorf("%s: %s, want its result in %s", c.name, line, c.field)
		}
		id, got, err := decodeEntry(line)
		if err != nil || id != "job-1" || !bytes.Equal(got, c.result) {
			t.Errorf("%s: decoded %q %q %v from %s, want %q", c.name, id, got, err, line, c.result)
		}
	}
	// Results that are text stay readable: no base64 of them.
	if line := encodeEntry("j", []byte(`{"fast":2}`)); string(line) != `{"id":"j","result":{"fast":2}}` {
		t.Errorf("line %s", line)
	}
}

// A journal is created with its header, gives back what was appended, and refuses a
// sweep of other jobs or another description with a message that says what differs.
func TestJournalRefusesAnotherSweep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.journal")
	jobs := testJobs("p")
	h := mustHeader(t, jobs, "grid 1")
	w, finished, err := openJournal(path, h)
	if err != nil || len(finished) != 0 {
		t.Fatalf("new journal: %v %v", finished, err)
	}
	if err := w.append("a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if first, _, _ := strings.Cut(string(data), "\n"); !strings.Contains(first, `"banfleet_sweep":1`) || !strings.Contains(first, `"description":"grid 1"`) {
		t.Fatalf("first line %s, want the header", first)
	}

	// The same jobs in another order are the same sweep.
	w, finished, err = openJournal(path, mustHeader(t, []dispatch.Job{jobs[1], jobs[0]}, "grid 1"))
	if err != nil || string(finished["a"]) != "1" || len(finished) != 1 {
		t.Fatalf("reopened: %q %v", finished, err)
	}
	_ = w.close()

	for _, c := range []struct {
		name string
		jobs []dispatch.Job
		desc string
		want string
	}{
		{"other data", testJobs("q"), "grid 1", "the job payloads differ"},
		{"another grid", append(testJobs("p"), dispatch.Job{ID: "c", Type: "sq"}), "grid 1", "it is for 2 jobs, this sweep has 3"},
		{"other ids", []dispatch.Job{{ID: "a", Type: "sq", Payload: "p1"}, {ID: "z", Type: "sq", Payload: "p2"}}, "grid 1", "the job ids differ"},
		{"other types", []dispatch.Job{{ID: "a", Type: "sq", Payload: "p1"}, {ID: "b", Type: "cube", Payload: "p2"}}, "grid 1", "the job types differ"},
		{"another description", jobs, "grid 2", `it describes the sweep as "grid 1", this one is "grid 2"`},
	} {
		_, _, err := openJournal(path, mustHeader(t, c.jobs, c.desc))
		if !errors.Is(err, ErrJournalMismatch) {
			t.Errorf("%s: %v, want ErrJournalMismatch", c.name, err)
			continue
		}
		for _, want := range []string{c.want, path, "use another journal file, or remove this one"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v\nlacks %q", c.name, err, want)
			}
		}
	}
	// The refused journal is left as it was.
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Errorf("a refused journal changed:\n%s\nwas\n%s", after, data)
	}
}

// A journal without a header (an older banfleet's) and a file that is no journal are
// refused, each with its own advice; neither is touched.
func TestJournalRefusesOldFormatAndOtherFiles(t *testing.T) {
	dir := t.TempDir()
	h := mustHeader(t, testJobs("p"), "")
	for _, c := range []struct{ name, content, want string }{
		{"old format", `{"id":"a","result":"MQ=="}` + "\n", "written by an older banfleet"},
		{"not a journal", "timestamp,open,high,low,close,volume\n", "is not a sweep journal"},
	} {
		path := filepath.Join(dir, c.name)
		if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := openJournal(path, h)
		if !errors.Is(err, ErrJournalMismatch) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrJournalMismatch saying %q", c.name, err, c.want)
		}
		if after, _ := os.ReadFile(path); string(after) != c.content {
			t.Errorf("%s: the file changed", c.name)
		}
	}
}

// A line torn by a crash is dropped and cut off, so the next result does not run into
// it; a damaged line before the end fails with its number.
func TestJournalTornAndDamagedLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.journal")
	h := mustHeader(t, testJobs("p"), "")
	w, _, err := openJournal(path, h)
	if err != nil {
		t.Fatal(err)
	}
	_ = w.append("a", []byte("1"))
	_ = w.close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.WriteString(`{"id":"b","te`) // the crash
	_ = f.Close()

	w, finished, err := openJournal(path, h)
	if err != nil || len(finished) != 1 || string(finished["a"]) != "1" {
		t.Fatalf("after a torn line: %q %v", finished, err)
	}
	_ = w.append("b", []byte("2"))
	_ = w.close()
	w, finished, err = openJournal(path, h)
	if err != nil || string(finished["a"]) != "1" || string(finished["b"]) != "2" {
		t.Fatalf("after appending past a torn line: %q %v", finished, err)
	}
	_ = w.close()

	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(data), "\n")
	damaged := lines[0] + "{not json\n" + strings.Join(lines[1:], "")
	if err := os.WriteFile(path, []byte(damaged), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openJournal(path, h); err == nil || !strings.Contains(err.Error(), "line 2 is damaged") {
		t.Fatalf("a damaged line: %v", err)
	}
}
