package engine

import (
	"fmt"
	"strings"
)

// maxReportedProblems bounds the problems a [CheckReport] lists; the rest
// are counted in Omitted.
const maxReportedProblems = 1000

// CheckReport is what [Check] found in a store.
type CheckReport struct {
	// Dir is the store's directory.
	Dir string
	// Collections, Faces, Users and Tokens count the records checked.
	Collections, Faces, Users, Tokens int
	// Problems are the contradictions found, store-wide ones first, then
	// by collection.
	Problems []Problem
	// Omitted counts problems found past the first 1000.
	Omitted int
}

// Problem is one contradiction in a store.
type Problem struct {
	// Collection is the collection the problem is in; empty for a problem of
	// the store as a whole.
	Collection string `json:"Collection,omitempty"`
	Message    string `json:"Message"`
}

func (p Problem) String() string {
	if p.Collection == "" {
		return p.Message
	}
	return fmt.Sprintf("collection %q: %s", p.Collection, p.Message)
}

// OK reports whether the store passed every check.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 && r.Omitted == 0 }

// Err is nil when the store passed every check, else an error wrapping
// [ErrCorrupt] that names the first problem and counts the others.
func (r *CheckReport) Err() error {
	if r.OK() {
		return nil
	}
	return &corruptError{dir: r.Dir, problems: r.Problems, n: len(r.Problems) + r.Omitted}
}

func (r *CheckReport) add(coll, format string, args ...any) {
	if len(r.Problems) == maxReportedProblems {
		r.Omitted++
		return
	}
	// A wrapped store error already says it is corruption.
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), ErrCorrupt.Error()+": ", "")
	r.Problems = append(r.Problems, Problem{Collection: coll, Message: msg})
}

// corruptError is how Open refuses a store: the problems found, of which
// the message names the first.
type corruptError struct {
	dir      string
	problems []Problem
	n        int // problems found, reported or not
}

func (e *corruptError) Error() string {
	more := ""
	if e.n > 1 {
		more = fmt.Sprintf(" (and %d more problems)", e.n-1)
	}
	return fmt.Sprintf("engine: the store in %s cannot be trusted: %v: %s%s; facesearch check --data %s lists every problem",
		e.dir, ErrCorrupt, e.problems[0], more, e.dir)
}

func (e *corruptError) Unwrap() error { return ErrCorrupt }
