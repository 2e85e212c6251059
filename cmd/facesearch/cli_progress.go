package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// progress reports a long job on standard error: a bar redrawn in place
// with rate and ETA when standard error is a terminal, a plain line now and
// then otherwise (logs, CI), nothing when quiet.
type progress struct {
	w     io.Writer
	tty   bool
	quiet bool
	unit  string // what is counted: "records"
	total int64  // bytes of input, 0 when unknown (standard input)
	start time.Time
	last  time.Time
	every time.Duration
	drawn bool
	nowFn func() time.Time
}

func newProgress(w io.Writer, unit string, total int64, quiet bool) *progress {
	p := &progress{w: w, tty: isTerminal(w), quiet: quiet, unit: unit, total: total, nowFn: time.Now}
	p.start = p.nowFn()
	p.last = p.start
	p.every = 10 * time.Second
	if p.tty {
		p.every = 100 * time.Millisecond
	}
	return p
}

// isTerminal reports whether w is a terminal: a character device, and not
// a dumb one.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Tick reports that done bytes of the input were read and count items
// processed. It is cheap enough to call per item.
func (p *progress) Tick(done int64, count int) {
	if p.quiet {
		return
	}
	now := p.nowFn()
	if now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	line := p.line(now, done, count)
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.drawn = true
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// Done clears the bar.
func (p *progress) Done() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

func (p *progress) line(now time.Time, done int64, count int) string {
	elapsed := now.Sub(p.start).Seconds()
	rate := float64(count) / max(elapsed, 1e-9)
	var b strings.Builder
	if p.total > 0 {
		frac := min(float64(done)/float64(p.total), 1)
		if p.tty {
			const width = 30
			full := int(frac * width)
			b.WriteString("[" + strings.Repeat("=", full))
			if full < width {
				b.WriteString(">" + strings.Repeat(" ", width-full-1))
			}
			b.WriteString("] ")
		}
		fmt.Fprintf(&b, "%3.0f%%  ", 100*frac)
	}
	fmt.Fprintf(&b, "%d %s  %s %s/s", count, p.unit, humanCount(rate), p.unit)
	if p.total > 0 && done > 0 && done < p.total {
		eta := time.Duration(elapsed * float64(p.total-done) / float64(done) * float64(time.Second))
		fmt.Fprintf(&b, "  ETA %s", eta.Round(time.Second))
	}
	return b.String()
}

// humanCount writes 1234567 as 1.2M.
func humanCount(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.1fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

// countingReader counts the bytes read through it, for progress. The
// count may be read while another goroutine reads.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}
