package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/facesearch/facesearch/engine"
)

// Helpers shared by the offline commands (import, export, users, search,
// eval, backup, describe).

const defaultDataDir = "./data"

func addDataFlag(fs *flag.FlagSet) *string {
	return fs.String("data", defaultDataDir, "the store `DIR`, the one facesearch serve --data uses")
}

func addCollectionFlag(fs *flag.FlagSet, what string) *string {
	return fs.String("collection", "", what)
}

func addOutputFlag(fs *flag.FlagSet) *string {
	return fs.String("output", "table", "output `format`: table or json")
}

// parseArgs parses flags wherever they stand among the positional
// arguments (so "import FILE --collection C" works too) and returns the
// positional ones. Arguments after "--" are all positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag stops at the first non-flag; "--" also stops it, and is gone.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseNoArgs parses a command's flags, which are all it takes: a
// positional argument is a usage error.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	rest, err := parseArgs(fs, args)
	if err == nil && len(rest) > 0 {
		err = usageErrorf(fs, "unexpected argument %q", rest[0])
	}
	return err
}

// flagWasSet reports whether the command line gave flag name.
func flagWasSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func checkOutput(fs *flag.FlagSet, output string) error {
	if output != "table" && output != "json" {
		return usageErrorf(fs, "--output is %q; want table or json", output)
	}
	return nil
}

func requireCollection(fs *flag.FlagSet, coll string) error {
	if coll == "" {
		return usageErrorf(fs, "--collection is required")
	}
	return nil
}

// storeExists reports whether dir holds something (a store, we trust
// Open to check).
func storeExists(dir string) bool {
	entries, err := os.ReadDir(dir)
	return err == nil && len(entries) > 0
}

// errNoStore is returned when --data points at nothing.
func errNoStore(dir string) error {
	return fmt.Errorf("no facesearch store in %s: give --data DIR, or create one with facesearch import --create", dir)
}

// openStore opens the store in dir for an offline command. A command that
// only reads opens it read-only and requires it to exist. A store held by
// another process (a running server) is refused with advice instead of
// Pebble's lock error.
func openStore(dir string, readOnly bool) (*engine.Engine, error) {
	if readOnly && !storeExists(dir) {
		return nil, errNoStore(dir)
	}
	e, err := engine.Open(dir, &engine.Options{ReadOnly: readOnly})
	if errors.Is(err, engine.ErrLocked) {
		return nil, fmt.Errorf("the store in %s is in use by another process, most likely a running facesearch serve: "+
			"offline commands need the store to themselves. Stop the server first, or do this through its API", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("open the store in %s: %w", dir, err)
	}
	return e, nil
}

// describeErr turns an engine error into a line for a person: the message,
// without the Rekognition code when there is one.
func describeErr(err error) string {
	var e *engine.Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return err.Error()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// examples formats a usage section: each line indented.
func examples(lines ...string) string {
	return "  " + strings.Join(lines, "\n  ")
}

// plural writes "1 face", "2 faces", "3 batches", "4 identities".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "ty") {
		return fmt.Sprintf("%d %sies", n, noun[:len(noun)-1])
	}
	if strings.HasSuffix(noun, "ch") || strings.HasSuffix(noun, "s") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
