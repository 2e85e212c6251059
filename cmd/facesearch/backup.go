package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/facesearch/facesearch/engine"
)

const backupSynopsis = `--data DIR --to DIR2

Copies a consistent checkpoint of the store in DIR into DIR2, which must not
exist. The copy is the store as of one instant, every call in it whole or
not at all. Restore by using the copy: facesearch serve --data DIR2 (or move
it into place while nothing has the store open).

It works on a store in use: when a running facesearch serve holds the
store, the server writes the checkpoint (asked over its admin socket, in
$XDG_RUNTIME_DIR/facesearch-UID or the temporary directory's) while it
goes on serving.`

func (m *Main) backup(ctx context.Context, args []string) error {
	fs := m.newFlagSet("backup", backupSynopsis, examples(
		"facesearch backup --data ./data --to ./backups/data-$(date +%F)",
		"facesearch describe --data ./backups/data-2025-01-31     # check the copy",
	))
	data := addDataFlag(fs)
	to := fs.String("to", "", "the new `DIR2` to copy into (required; must not exist)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	switch {
	case *to == "":
		return usageErrorf(fs, "--to is required")
	}
	if _, err := os.Stat(*to); err == nil {
		return fmt.Errorf("%s already exists: give a new directory", *to)
	}
	if !storeExists(*data) {
		return errNoStore(*data)
	}
	e, err := engine.Open(*data, nil)
	if errors.Is(err, engine.ErrLocked) {
		// A live store: the server that holds it writes the checkpoint.
		if err := requestBackup(ctx, *data, *to); err != nil {
			return fmt.Errorf("the store in %s is in use and %w", *data, err)
		}
		fmt.Fprintf(m.Stdout, "backed up %s to %s (by the running server)\n", *data, *to)
		return nil
	}
	if err != nil {
		return fmt.Errorf("open the store in %s: %w", *data, err)
	}
	defer e.Close()
	if err := e.Backup(*to); err != nil {
		return err
	}
	if err := e.Close(); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "backed up %s to %s\n", *data, *to)
	return nil
}
