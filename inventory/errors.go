package inventory

import (
	"errors"
	"fmt"
	"strconv"
)

// Kinds of inventory errors. An *Error matches its kind with errors.Is, so
// callers can branch on what went wrong while printing the file:line message.
var (
	ErrSyntax          = errors.New("inventory syntax error")
	ErrNoEtcd          = errors.New("no etcd members")
	ErrDuplicate       = errors.New("duplicate")
	ErrNoAddress       = errors.New("host without address")
	ErrBadVar          = errors.New("bad variable")
	ErrClusterNotFound = errors.New("cluster not found")
)

// Pos is a place in an inventory or vars file.
type Pos struct {
	File string
	Line int // 0 when the whole file is meant
}

func (p Pos) String() string {
	if p.Line > 0 {
		return p.File + ":" + strconv.Itoa(p.Line)
	}
	return p.File
}

// Error is a problem found in an inventory or vars file. It prints as
// "file:line: message" so an operator can jump to the line.
type Error struct {
	File string
	Line int
	Msg  string
	// Kind is one of the Err* sentinels above (errors.Is matches it), or nil.
	Kind error
	// Err is the underlying cause, if any (errors.As/Is look through it).
	Err error
}

func (e *Error) Error() string {
	msg := e.Msg
	if e.Err != nil {
		if msg == "" {
			msg = e.Err.Error()
		} else {
			msg += ": " + e.Err.Error()
		}
	}
	loc := Pos{e.File, e.Line}.String()
	if loc == "" {
		return msg
	}
	return loc + ": " + msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the kind of this error.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// Pos is where the error is.
func (e *Error) Pos() Pos { return Pos{e.File, e.Line} }

func errAt(p Pos, kind error, format string, args ...any) *Error {
	return &Error{File: p.File, Line: p.Line, Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// clusterNotFound is LoadCluster's error for a cluster dir without a hosts file.
type clusterNotFound struct {
	name, path string
	err        error
}

func (e *clusterNotFound) Error() string {
	return fmt.Sprintf("cluster %s not found: no %s; is --base right?", e.name, e.path)
}
func (e *clusterNotFound) Unwrap() error        { return e.err }
func (e *clusterNotFound) Is(target error) bool { return target == ErrClusterNotFound }
