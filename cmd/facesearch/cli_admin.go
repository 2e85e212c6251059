package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A running server holds its store's lock, so offline commands cannot open
// it. For backups of a live store the server also listens on a Unix socket;
// `facesearch backup` asks it there for a checkpoint. The socket lives in a
// directory of the user's own outside the store (see adminSocketPath), so a
// server killed without cleanup leaves nothing in the store directory to
// trip up a copy of it.

// legacyAdminSocket is where servers once put the socket: in the store.
const legacyAdminSocket = "admin.sock"

// adminSocketPath is the socket of the store in dir: named after the
// store's absolute path, in $XDG_RUNTIME_DIR/facesearch-UID (or the temporary
// directory's), a directory only the user may enter.
func adminSocketPath(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" {
		base = os.TempDir()
	}
	run := filepath.Join(base, fmt.Sprintf("facesearch-%d", os.Getuid()))
	if err := os.Mkdir(run, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	// Chmod succeeds only for the directory's owner, and leaves no one else
	// able to reach the socket or plant one in its place.
	if fi, err := os.Lstat(run); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", run)
	}
	if err := os.Chmod(run, 0o700); err != nil {
		return "", fmt.Errorf("%s is not the user's own directory: %w", run, err)
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(run, hex.EncodeToString(sum[:8])+".sock"), nil
}

// backuper writes a consistent copy of a live store: an engine, or a
// cluster node's current local engine.
type backuper interface {
	Backup(dir string) error
}

// serveAdmin answers POST /backup?to=DIR on dir's admin socket until ctx
// ends. The caller holds the store's lock, so a socket file left by a
// crashed server is stale and safe to replace.
func serveAdmin(ctx context.Context, e backuper, dir string, log *slog.Logger) (stop func(), err error) {
	legacy := filepath.Join(dir, legacyAdminSocket)
	if fi, err := os.Lstat(legacy); err == nil && fi.Mode()&fs.ModeSocket != 0 {
		os.Remove(legacy) // a crashed older server's, stale: we hold the lock
	}
	path, err := adminSocketPath(dir)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /backup", func(w http.ResponseWriter, r *http.Request) {
		to := r.URL.Query().Get("to")
		if !filepath.IsAbs(to) {
			http.Error(w, "to must be an absolute directory", http.StatusBadRequest)
			return
		}
		start := time.Now()
		if err := e.Backup(to); err != nil {
			log.Error("backup failed", "to", to, "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		log.Info("backup written", "to", to, "duration", time.Since(start))
		fmt.Fprintln(w, "ok")
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	return func() {
		hs.Close()
		os.Remove(path)
	}, nil
}

// errNoAdmin means no server answers on the store's admin socket.
var errNoAdmin = errors.New("no server answers on the store's admin socket")

// requestBackup asks the server holding the store in dir to checkpoint it
// into to.
func requestBackup(ctx context.Context, dir, to string) error {
	abs, err := filepath.Abs(to)
	if err != nil {
		return err
	}
	sock, err := adminSocketPath(dir)
	if err != nil {
		return fmt.Errorf("%w (%v)", errNoAdmin, err)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://facesearch/backup?to="+url.QueryEscape(abs), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w (%v)", errNoAdmin, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the server refused the backup: %s", strings.TrimSpace(string(body)))
	}
	return nil
}
