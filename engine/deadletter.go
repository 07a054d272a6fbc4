package engine

import "fmt"

// RecordError is why a record was dead-lettered: Code is a short bounded
// class (a metric label), Reason a sentence a person can act on.
type RecordError struct {
	Code   string
	Reason string
}

func (e *RecordError) Error() string { return e.Reason }

func rerr(code, format string, args ...any) *RecordError {
	return &RecordError{Code: code, Reason: fmt.Sprintf(format, args...)}
}
