package main

import (
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		code, out, errOut := cli(t, nil, args...)
		require.Equal(t, exitOK, code, errOut)
		require.Regexp(t, `^facesearch \S+\n`, out, "%v", args)
		require.Contains(t, out, runtime.Version())
		require.Contains(t, out, "revision: ")
	}
	code, _, _ := cli(t, nil, "version", "extra")
	require.Equal(t, exitUsage, code)

	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want []string
	}{
		{"no build info", nil, []string{"facesearch (devel)\n", "revision: unknown\n"}},
		{"no VCS stamp", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			[]string{"facesearch (devel)\n", "go:       go1.26.0 ", "revision: unknown\n"}},
		{"stamped", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-06T17:00:00Z"}, {Key: "vcs.modified", Value: "true"},
		}}, []string{"facesearch v1.4.0\n", "revision: 0123abcd of 2026-12-06T17:00:00Z (with uncommitted changes)\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := versionText(tt.bi)
			for _, w := range tt.want {
				require.Contains(t, got, w)
			}
		})
	}
}

// TestFlagHelpDoubleDash: every command's -h writes its flags as the usage
// lines and README do, --name.
func TestFlagHelpDoubleDash(t *testing.T) {
	singleDash := regexp.MustCompile(`(?m)^  -[a-z]`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			code, _, errOut := cli(t, nil, n, "-h")
			require.Equal(t, exitOK, code)
			require.NotRegexp(t, singleDash, errOut)
			if n != "version" {
				require.Regexp(t, `(?m)^  --[a-z]`, errOut)
			}
		})
	}
	_, _, errOut := cli(t, nil, "serve", "-h")
	require.True(t, strings.Contains(errOut, "\n  --listen address\n"), errOut)
}
