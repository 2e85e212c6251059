package main

import (
	"fmt"
	"strconv"
	"strings"
)

// freeSpaceFlag is --min-free-space: a byte count with an optional binary
// unit. It maps onto engine.Options.MinFreeBytes: unset is the engine's
// default (0 there), and 0 turns the floor off (negative there).
type freeSpaceFlag struct{ bytes int64 }

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

func (f *freeSpaceFlag) Set(s string) error {
	num, shift := s, uint(0)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = strings.TrimSpace(n), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)>>shift {
		return fmt.Errorf("want a size such as 512MiB, 2GiB or 0, not %q", s)
	}
	f.bytes = n << shift
	if f.bytes == 0 {
		f.bytes = -1
	}
	return nil
}

func (f *freeSpaceFlag) String() string {
	switch {
	case f == nil || f.bytes == 0:
		return ""
	case f.bytes < 0:
		return "0"
	}
	return strconv.FormatInt(f.bytes, 10)
}
