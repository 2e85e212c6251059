// Command facesearch is the one binary of facesearch: the Rekognition-
// compatible server and the offline collection tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	os.Exit(m.Run(ctx, os.Args[1:]))
}

// Main runs the command with its standard streams, so tests drive it as a
// user would.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// errUsage marks a command-line mistake: the command printed its usage.
var errUsage = errors.New("usage")

type command struct {
	summary string
	run     func(m *Main, ctx context.Context, args []string) error
}

// commands is the table of subcommands; each lives in its own file.
var commands = map[string]command{
	"serve":    {"run the Rekognition-compatible HTTP server", (*Main).serve},
	"import":   {"bulk-load faces from .npy or JSON Lines files", (*Main).importCmd},
	"export":   {"write a collection's faces as JSON Lines or .npy", (*Main).export},
	"users":    {"list a collection's users (users list)", (*Main).users},
	"search":   {"search users or faces (search users|faces)", (*Main).search},
	"eval":     {"measure identification and false-accept rates on labeled embeddings", (*Main).eval},
	"bench":    {"measure search and ingest speed on synthetic data", (*Main).bench},
	"backup":   {"copy a consistent checkpoint of the store", (*Main).backup},
	"describe": {"show collections and their counts", (*Main).describe},
	"check":    {"verify a store's invariants offline", (*Main).check},
	"version":  {"print the version, the Go version and the VCS revision (also --version)", (*Main).versionCmd},
}

// Run runs one subcommand and returns the process exit code: 0 ok, 1
// failure, 2 usage.
func (m *Main) Run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		m.usage()
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(m.Stderr, "facesearch: unknown command %q\n\n", args[0])
		m.usage()
		return exitUsage
	}
	err := cmd.run(m, ctx, args[1:])
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	default:
		fmt.Fprintf(m.Stderr, "facesearch %s: %v\n", args[0], err)
		return exitFailure
	}
}

func (m *Main) usage() {
	fmt.Fprintln(m.Stderr, "facesearch: a face-similarity user search engine with Rekognition's API.")
	fmt.Fprintln(m.Stderr, "\nUsage: facesearch <command> [flags]   (facesearch <command> -h for its flags and examples)")
	fmt.Fprintln(m.Stderr, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(m.Stderr, "  %-9s %s\n", n, commands[n].summary)
	}
}

// newFlagSet makes a subcommand's flag set that prints its usage with
// examples to m.Stderr and reports mistakes as errUsage.
func (m *Main) newFlagSet(name, synopsis, examples string) *flag.FlagSet {
	fs := flag.NewFlagSet("facesearch "+name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(m.Stderr, "Usage: facesearch %s %s\n\nFlags:\n", name, synopsis)
		printDefaults(m.Stderr, fs)
		if examples != "" {
			fmt.Fprintf(m.Stderr, "\nExamples:\n%s\n", examples)
		}
	}
	return fs
}

// printDefaults is [flag.FlagSet.PrintDefaults] with flags written as the
// usage lines and README write them, --name (the flag package accepts both
// forms and prints -name).
func printDefaults(w io.Writer, fs *flag.FlagSet) {
	var b strings.Builder
	out := fs.Output()
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(out)
	io.WriteString(w, flagLine.ReplaceAllString(b.String(), "$1--"))
}

// flagLine matches the start of each flag's line in PrintDefaults' output.
var flagLine = regexp.MustCompile(`(?m)^(  )-`)

// parseFlags parses args, mapping flag mistakes to errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

// usageErrorf reports a command-line mistake after printing the usage.
func usageErrorf(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "%s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return errUsage
}
