package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is the release, set when building one with
// -ldflags "-X main.version=v1.2.3". The default is the module's version
// from the build information ("(devel)" for a build from a checkout).
var version = ""

// versionCmd prints what facesearch --version prints.
func (m *Main) versionCmd(ctx context.Context, args []string) error {
	fs := m.newFlagSet("version", "(or facesearch --version)", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf(fs, "unexpected argument %q", fs.Arg(0))
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprint(m.Stdout, versionText(bi))
	return nil
}

// versionText is the version, the Go version and the VCS revision of a
// build. The revision is "unknown" when the build recorded none (go build
// -buildvcs=false, or outside a git checkout), as `go test` binaries do.
func versionText(bi *debug.BuildInfo) string {
	v, goVersion, rev := version, runtime.Version(), "unknown"
	var modified, when string
	if bi != nil {
		if v == "" {
			v = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (with uncommitted changes)"
				}
			case "vcs.time":
				when = " of " + s.Value
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "facesearch %s\n", v)
	fmt.Fprintf(&b, "go:       %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "revision: %s%s%s\n", rev, when, modified)
	return b.String()
}
