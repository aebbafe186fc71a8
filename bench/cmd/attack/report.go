package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Result is one attack's figures. Heap sizes are the runtime's own (gctrace, MiB);
// -1 means unknown (the probe failed or the master died).
type Result struct {
	Attack        string         `json:"attack"`
	Family        string         `json:"family"`
	Scale         string         `json:"scale"`
	MasterArgs    string         `json:"master_args"`
	Sent          string         `json:"sent"`
	Outcome       string         `json:"outcome"`
	PeakHeapMiB   int            `json:"peak_heap_mib"`   // max A or B over all GC cycles
	LiveBeforeMiB int            `json:"live_before_mib"` // C of a GC before the attack
	LiveAfterMiB  int            `json:"live_after_mib"`  // C of a GC begun after the attack
	PeakRSS       uint64         `json:"peak_rss_bytes"`  // VmHWM
	CPUSeconds    float64        `json:"cpu_seconds"`     // utime+stime during the attack
	LogLines      int            `json:"log_lines"`       // stderr lines other than gctrace, during the attack
	LogBytes      int64          `json:"log_bytes"`
	TopLogs       []string       `json:"top_logs,omitempty"`
	FDsAtEnd      int            `json:"fds_at_end"`
	GCs           int            `json:"gc_cycles"`
	Seconds       float64        `json:"seconds"` // wall time of the whole attack run
	MasterDied    string         `json:"master_died,omitempty"`
	Error         string         `json:"error,omitempty"`
	Figures       map[string]any `json:"figures,omitempty"`
}

// Report is the whole run.
type Report struct {
	Date     time.Time `json:"date"`
	Command  string    `json:"command"`
	Binary   string    `json:"binary"`
	BinaryID string    `json:"binary_sha256"`
	Machine  string    `json:"machine"`
	Scale    string    `json:"scale"`
	LoadAvg  [2]string `json:"loadavg"` // /proc/loadavg's 1-minute figure at the start and the end
	Skipped  []string  `json:"skipped,omitempty"`
	Results  []*Result `json:"results"`
}

func mib(v int) string {
	if v < 0 {
		return "?"
	}
	return fmt.Sprintf("%d MiB", v)
}

func bytesHuman(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// decimal is a size given in decimal units (a link rate, an upload chosen as
// "15 MB").
func decimal(b int64) string {
	switch {
	case b >= 1e9:
		return fmt.Sprintf("%.3g GB", float64(b)/1e9)
	case b >= 1e6:
		return fmt.Sprintf("%.3g MB", float64(b)/1e6)
	case b >= 1e3:
		return fmt.Sprintf("%.3g kB", float64(b)/1e3)
	}
	return fmt.Sprintf("%d B", b)
}

// cell makes text safe inside a markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// writeMarkdown writes the report as markdown.
func writeMarkdown(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "# Attacks on the master\n\n")
	fmt.Fprintf(w, "- date: %s\n", rep.Date.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "- machine: %s\n", rep.Machine)
	fmt.Fprintf(w, "- master: `%s` (sha256 %s)\n", rep.Binary, rep.BinaryID)
	fmt.Fprintf(w, "- command: `%s`\n", rep.Command)
	fmt.Fprintf(w, "- scale: %s\n", rep.Scale)
	fmt.Fprintf(w, "- load average (1 min) at start / end: %s / %s (other work on this machine competes with the master and the harness)\n", rep.LoadAvg[0], rep.LoadAvg[1])
	if len(rep.Skipped) > 0 {
		fmt.Fprintf(w, "- not run: %s\n", strings.Join(rep.Skipped, ", "))
	}
	fmt.Fprintf(w, "\nHeap figures are the master runtime's own (GODEBUG=gctrace=1, whole MiB): peak = the largest heap any GC cycle started or marked; live = what a GC cycle found live (before: on the fresh master; after: a cycle begun after the attack ended, the attacker's connections still open unless the attack says otherwise). Peak RSS is VmHWM. CPU and log lines cover the attack window only.\n\n")
	fmt.Fprintln(w, "| attack | what was sent | peak heap | live before → after | peak RSS | master CPU s | log lines | outcome |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, r := range rep.Results {
		outcome := r.Outcome
		if r.MasterDied != "" {
			outcome = r.MasterDied + "; " + outcome
		}
		if r.Error != "" {
			outcome = strings.TrimSuffix(outcome, "; ") + " (harness error: " + r.Error + ")"
		}
		if k, ok := r.Figures["killed_by_harness"]; ok {
			outcome = fmt.Sprintf("killed by the harness: %v; %s", k, outcome)
		}
		logs := fmt.Sprintf("%d", r.LogLines)
		if r.LogLines > 0 {
			logs += " (" + bytesHuman(r.LogBytes) + ")"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s → %s | %s | %.2f | %s | %s |\n",
			cell(r.Attack), cell(r.Sent), mib(r.PeakHeapMiB), mib(r.LiveBeforeMiB), mib(r.LiveAfterMiB),
			bytesHuman(int64(r.PeakRSS)), r.CPUSeconds, logs, cell(outcome))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Master flags and the most frequent log messages per attack:")
	fmt.Fprintln(w)
	for _, r := range rep.Results {
		args, logs := r.MasterArgs, strings.Join(r.TopLogs, "; ")
		if args == "" {
			args = "defaults"
		}
		if logs == "" {
			logs = "nothing logged"
		}
		fmt.Fprintf(w, "- **%s** (`%s`, %.0f s in all): %s\n", r.Attack, args, r.Seconds, cell(logs))
	}
}

// writeJSON writes the report as indented JSON.
func writeJSON(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
