package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress shows how a run advances, one task after another: on a
// terminal a bar redrawn in place with the rate and the time left; on
// anything else (a log file, a pipe) a plain line every few seconds and
// one at the end of each task, so that logs stay readable.
type progress struct {
	w   io.Writer
	tty bool
	now func() time.Time // time.Now; tests replace it

	label, unit string
	total       int
	start, last time.Time
	// next is when the next task's work began: the previous update (tasks
	// report after their first unit of work), or a mark.
	next     time.Time
	drawn    bool // a bar is on the terminal's current line
	finished bool // the task's last line is out
}

// Redraw intervals: a terminal bar often enough to look live, log lines
// seldom enough not to flood the log.
const (
	ttyEvery   = 100 * time.Millisecond
	plainEvery = 10 * time.Second
	barWidth   = 24
)

func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: isTerminal(w), now: time.Now}
}

// isTerminal reports whether w is a character device, as a terminal is.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// begin starts a task of total units (images, steps). Its clock starts at
// the last update or mark, whichever came last, or now.
func (p *progress) begin(label, unit string, total int) {
	p.end()
	p.label, p.unit, p.total = label, unit, total
	p.start = p.next
	if p.start.IsZero() {
		p.start = p.now()
	}
	p.next = time.Time{}
	p.last = time.Time{}
	if !p.tty {
		p.last = p.start // a log's first line after plainEvery, not at once
	}
	p.finished = false
}

// mark notes that the next task's work starts now.
func (p *progress) mark() { p.next = p.now() }

// update reports done units of the task; extra is shown after the bar.
func (p *progress) update(done int, extra string) {
	if p.finished {
		return
	}
	now := p.now()
	p.next = now
	final := done >= p.total
	every := plainEvery
	if p.tty {
		every = ttyEvery
	}
	if !final && now.Sub(p.last) < every {
		return
	}
	p.last = now
	line := p.line(done, now.Sub(p.start), extra)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
	} else {
		fmt.Fprintln(p.w, line)
	}
	if final {
		p.end()
		p.finished = true
	}
}

// line formats the state of the task.
func (p *progress) line(done int, elapsed time.Duration, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s ", p.label)
	frac := 1.0
	if p.total > 0 {
		frac = min(1, float64(done)/float64(p.total))
	}
	if p.tty {
		n := int(frac * barWidth)
		fmt.Fprintf(&b, "[%s%s] ", strings.Repeat("=", n), strings.Repeat(" ", barWidth-n))
	}
	fmt.Fprintf(&b, "%3.0f%% %d/%d %s", 100*frac, done, p.total, p.unit)
	if sec := elapsed.Seconds(); done > 0 && sec > 0 {
		rate := float64(done) / sec
		fmt.Fprintf(&b, ", %s/s", fmtRate(rate))
		if done < p.total {
			left := time.Duration(float64(p.total-done) / rate * float64(time.Second))
			fmt.Fprintf(&b, ", ETA %s", fmtDuration(left))
		} else {
			fmt.Fprintf(&b, " in %s", fmtDuration(elapsed))
		}
	}
	if extra != "" {
		b.WriteString(", " + extra)
	}
	return b.String()
}

// println prints a line that stays (an epoch's summary) above the bar.
func (p *progress) println(s string) {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
	fmt.Fprintln(p.w, s)
	p.last = time.Time{} // redraw the bar at the next update
}

// end leaves the terminal's cursor on a fresh line.
func (p *progress) end() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func fmtRate(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	case r >= 10:
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.2f", r)
}

// fmtDuration rounds to what a person reads: 0.4s, 12s, 3m05s, 1h02m.
func fmtDuration(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
