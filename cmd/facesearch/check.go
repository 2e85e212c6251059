package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/facesearch/facesearch/engine"
)

const checkSynopsis = `[--data DIR] [--output table|json]

Verifies, offline and without changing anything, every invariant the server
relies on when it opens the store: each record decodes, faces have the
collection's dimension and unit length, faces belong to users that exist,
users have at most 100 faces and agree with the primary-key index, counters
are ahead of what is in use, and no record is left over from a deleted
collection; and that Pebble's files open: a write-ahead log damaged before
its end, or a lost manifest or table, is a problem too. Lists every problem
found and exits 1 if there is any; serve refuses such a store. The store must not be in use (stop the server first).`

func (m *Main) check(ctx context.Context, args []string) error {
	fs := m.newFlagSet("check", checkSynopsis, examples(
		"facesearch check --data /var/lib/facesearch",
		"facesearch check --data ./data --output json",
	))
	data := addDataFlag(fs)
	output := addOutputFlag(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if err := checkOutput(fs, *output); err != nil {
		return err
	}
	if !storeExists(*data) {
		return errNoStore(*data)
	}
	rep, err := engine.Check(ctx, *data)
	if p, ok := unopenable(err); ok {
		// Not a failure to run the check: what it found.
		rep, err = &engine.CheckReport{Dir: *data, Problems: []engine.Problem{p}}, nil
	}
	if errors.Is(err, engine.ErrLocked) {
		return fmt.Errorf("the store in %s is in use by another process, most likely a running facesearch serve: "+
			"stop it first; check reads the store as it is on disk", *data)
	}
	if err != nil {
		return fmt.Errorf("check the store in %s: %w", *data, err)
	}
	if *output == "json" {
		if rep.Problems == nil {
			rep.Problems = []engine.Problem{}
		}
		if err := writeJSON(m.Stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(m.Stdout, "checked %s: %s, %s, %s, %s\n", rep.Dir, plural(rep.Collections, "collection"),
			plural(rep.Faces, "face"), plural(rep.Users, "user"), plural(rep.Tokens, "idempotency record"))
		if rep.OK() {
			fmt.Fprintln(m.Stdout, "no problems found")
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(m.Stdout, "problem: %s\n", p)
		}
		if rep.Omitted > 0 {
			fmt.Fprintf(m.Stdout, "... and %d more problems\n", rep.Omitted)
		}
	}
	if !rep.OK() {
		return fmt.Errorf("%s found in %s: serve will refuse this store", plural(len(rep.Problems)+rep.Omitted, "problem"), *data)
	}
	return nil
}

// unopenable turns an error of a store that cannot be opened as it is (a
// damaged log, lost Pebble files) into the problem check reports, with
// what the operator can do.
func unopenable(err error) (engine.Problem, bool) {
	var d *engine.LogDamage
	switch {
	case errors.As(err, &d):
		return engine.Problem{Message: fmt.Sprintf("%v. serve refuses the store; serve --salvage drops those records "+
			"(after saving the logs as they were in the store's salvaged/ directory) and says what it dropped", d)}, true
	case errors.Is(err, engine.ErrDamaged):
		return engine.Problem{Message: err.Error()}, true
	}
	return engine.Problem{}, false
}
