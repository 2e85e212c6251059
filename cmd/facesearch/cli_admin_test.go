package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// TestBackupLiveServer: `facesearch backup` on a store a running server
// holds gets a consistent copy from the server while writes go on; every
// write acknowledged before the backup started is in the copy.
func TestBackupLiveServer(t *testing.T) {
	dir := t.TempDir()
	data, copyDir := filepath.Join(dir, "data"), filepath.Join(dir, "copy")
	url, _, stop := startServe(t, "--listen", "127.0.0.1:0", "--data", data)
	call := func(op string, body any) error {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "RekognitionService."+op)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d", op, resp.StatusCode)
		}
		return nil
	}
	require.NoError(t, call("CreateCollection", map[string]any{"CollectionId": "live"}))

	var acked atomic.Int64
	stopWriting := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopWriting:
					return
				default:
				}
				if err := call("CreateUser", map[string]any{"CollectionId": "live", "UserId": fmt.Sprintf("w%d-%d", w, i)}); err != nil {
					t.Error(err)
					return
				}
				acked.Add(1)
			}
		}()
	}
	require.Eventually(t, func() bool { return acked.Load() >= 20 }, 10*time.Second, 10*time.Millisecond)
	before := acked.Load()
	out := cliOK(t, "backup", "--data", data, "--to", copyDir)
	require.Contains(t, out, "by the running server")
	close(stopWriting)
	wg.Wait()
	require.Equal(t, exitOK, stop())

	e, err := engine.Open(copyDir, nil)
	require.NoError(t, err)
	defer e.Close()
	d, err := e.DescribeCollection(context.Background(), &engine.DescribeCollectionInput{CollectionId: "live"})
	require.NoError(t, err)
	require.GreaterOrEqual(t, d.UserCount, before, "every user acknowledged before the backup is in it")
	n := int64(0)
	for _, err := range e.AllUsers(context.Background(), "live") {
		require.NoError(t, err)
		n++
	}
	require.Equal(t, d.UserCount, n, "the copy is consistent: counts agree with the listing")
}
