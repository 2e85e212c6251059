package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The clients below are Python programs: each test runs when its client is
// installed and skips otherwise (CI installs neither), against a loopback
// server of its own, with credentials and configuration of the test's
// making so the machine's AWS settings play no part.

// clientEnv is an environment for AWS clients that reads no file of the
// machine's and never looks for instance credentials.
func clientEnv(t *testing.T) []string {
	dir := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"AWS_ACCESS_KEY_ID=facesearch", "AWS_SECRET_ACCESS_KEY=facesearch",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "AWS_PAGER=",
	)
}

// run runs a client command with a deadline, so a hung client fails the
// test instead of holding it. It may run on any goroutine.
func run(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestBoto3Walk runs testdata/boto3_walk.py: boto3 reads BoundingBox from
// every face it gets back, the ARN's region is the client's, and a
// double-encoded image is refused saying how to send it.
func TestBoto3Walk(t *testing.T) {
	if err := exec.Command("python3", "-c", "import boto3").Run(); err != nil {
		t.Skip("python3 with boto3 is not installed")
	}
	t.Parallel()
	_, ts := newServer(t, nil)
	out, err := run(clientEnv(t), "python3", "testdata/boto3_walk.py", ts.URL)
	require.NoError(t, err, out)
	require.Equal(t, "ok\n", out)
}

// TestAWSCLIWalk runs the AWS CLI's face commands: every face it prints has
// a BoundingBox, and --image '{"Bytes": ...}', which the v1 CLI base64-encodes
// a second time, is refused saying to pass the file with fileb://.
func TestAWSCLIWalk(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI is not installed")
	}
	t.Parallel()
	_, ts := newServer(t, nil)
	env := clientEnv(t)
	dir := t.TempDir()
	face := filepath.Join(dir, "face.npy")
	require.NoError(t, os.WriteFile(face, npyVec([]float32{1, 0, 0, 0}), 0o600))
	args := func(a ...string) []string {
		return append(append([]string{"rekognition"}, a...), "--endpoint-url", ts.URL, "--region", "ap-south-1", "--output", "json")
	}
	parse := func(out string, err error) map[string]any {
		t.Helper()
		require.NoError(t, err, out)
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &v), out)
		return v
	}
	aws := func(a ...string) map[string]any {
		t.Helper()
		return parse(run(env, "aws", args(a...)...))
	}
	whole := map[string]any{"Width": 1.0, "Height": 1.0, "Left": 0.0, "Top": 0.0}
	boxOf := func(v any, member string) any { return v.(map[string]any)[member].(map[string]any)["BoundingBox"] }

	cc := aws("create-collection", "--collection-id", "staff")
	require.Equal(t, "arn:aws:rekognition:ap-south-1:000000000000:collection/staff", cc["CollectionArn"])
	ix := aws("index-faces", "--collection-id", "staff", "--image-bytes", "fileb://"+face, "--external-image-id", "alice.jpg")
	recs := ix["FaceRecords"].([]any)
	require.Len(t, recs, 1)
	require.Equal(t, whole, boxOf(recs[0], "Face"))
	require.Equal(t, whole, boxOf(recs[0], "FaceDetail"))

	// The rest only read, so they run at once: each CLI start is slow.
	b64 := base64.StdEncoding.EncodeToString(npyVec([]float32{1, 0, 0, 0}))
	calls := [][]string{
		args("list-faces", "--collection-id", "staff"),
		args("search-faces-by-image", "--collection-id", "staff", "--image-bytes", "fileb://"+face),
		args("search-users-by-image", "--collection-id", "staff", "--image", `{"Bytes": "`+b64+`"}`),
	}
	outs, errs := make([]string, len(calls)), make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() { outs[i], errs[i] = run(env, "aws", c...) })
	}
	wg.Wait()
	lf, sf, bad, badErr := parse(outs[0], errs[0]), parse(outs[1], errs[1]), outs[2], errs[2]
	require.Len(t, lf["Faces"], 1)
	require.Equal(t, whole, lf["Faces"].([]any)[0].(map[string]any)["BoundingBox"])
	require.Equal(t, whole, sf["SearchedFaceBoundingBox"])
	matches := sf["FaceMatches"].([]any)
	require.Len(t, matches, 1)
	require.Equal(t, whole, boxOf(matches[0], "Face"))

	if badErr == nil {
		// The v2 CLI decodes the base64 itself (cli_binary_format
		// base64), so the file arrives once encoded and is searched.
		require.Contains(t, bad, "UserMatches")
		t.Log("this AWS CLI sent --image Bytes once encoded")
		return
	}
	t.Log("this AWS CLI encoded --image Bytes a second time")
	require.Contains(t, bad, "InvalidImageFormatException")
	require.Contains(t, bad, "fileb://")
}
