package file

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/smartgroups/smartgroups/engine"
)

// Source reads NDJSON input lines.
type Source struct {
	sc      *bufio.Scanner
	maxLine int
	offset  int64
	done    bool
}

// NewSource returns a source reading r, with lines of at most MaxLineBytes.
func NewSource(r io.Reader) *Source { return NewSourceMax(r, MaxLineBytes) }

// NewSourceMax returns a source reading r, with lines of at most maxLine
// bytes: a longer line stops the source with an error (a record value over
// the engine's size limit but within the line limit is dead-lettered).
func NewSourceMax(r io.Reader, maxLine int) *Source {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(64<<10, maxLine)), maxLine)
	return &Source{sc: sc, maxLine: maxLine}
}

// Next returns up to max records; io.EOF once the input is exhausted.
func (s *Source) Next(max int) ([]engine.Record, error) {
	if s.done {
		return nil, io.EOF
	}
	var out []engine.Record
	for len(out) < max {
		if !s.sc.Scan() {
			s.done = true
			if err := s.sc.Err(); err != nil {
				if errors.Is(err, bufio.ErrTooLong) {
					return out, fmt.Errorf("file: line %d is longer than %d bytes", s.offset+1, s.maxLine)
				}
				return out, fmt.Errorf("file: read input: %w", err)
			}
			break
		}
		line := bytes.TrimSpace(s.sc.Bytes())
		off := s.offset
		s.offset++
		if len(line) == 0 {
			continue
		}
		out = append(out, Decode(line, off))
	}
	if len(out) == 0 && s.done {
		return nil, io.EOF
	}
	return out, nil
}

// Sink writes membership events and dead letters as NDJSON.
type Sink struct {
	out, dead *bufio.Writer
	// access receives the access events; nil: they are not written.
	access *bufio.Writer
	buf    []byte
}

// NewSink returns a sink writing events to out and dead letters to dead.
func NewSink(out, dead io.Writer) *Sink {
	return &Sink{out: bufio.NewWriterSize(out, 256<<10), dead: bufio.NewWriterSize(dead, 64<<10)}
}

// WithAccess makes the sink write access events (SPEC §4.3) to w, one
// JSON object per line in emission order; by default they are dropped.
func (s *Sink) WithAccess(w io.Writer) *Sink {
	s.access = bufio.NewWriterSize(w, 64<<10)
	return s
}

// Write appends a result's events, access events and dead letters.
func (s *Sink) Write(res *engine.Result) error {
	if s.access != nil {
		for i := range res.Access {
			s.buf = append(engine.AppendAccessEventJSON(s.buf[:0], &res.Access[i]), '\n')
			if _, err := s.access.Write(s.buf); err != nil {
				return fmt.Errorf("file: write access: %w", err)
			}
		}
	}
	for i := range res.Events {
		s.buf = append(engine.AppendEventJSON(s.buf[:0], &res.Events[i]), '\n')
		if _, err := s.out.Write(s.buf); err != nil {
			return fmt.Errorf("file: write: %w", err)
		}
	}
	for i := range res.DeadLetters {
		s.buf = append(engine.AppendDeadLetterJSON(s.buf[:0], &res.DeadLetters[i]), '\n')
		if _, err := s.dead.Write(s.buf); err != nil {
			return fmt.Errorf("file: write: %w", err)
		}
	}
	return nil
}

// WriteOutbox appends recovered outbox entries (after a crash).
func (s *Sink) WriteOutbox(entries []engine.OutboxEntry) error {
	for _, o := range entries {
		if err := s.Write(&engine.Result{Events: o.Events, Access: o.Access, DeadLetters: o.DeadLetters}); err != nil {
			return err
		}
	}
	return nil
}

// Flush flushes both outputs.
func (s *Sink) Flush() error {
	if err := s.out.Flush(); err != nil {
		return fmt.Errorf("file: write output: %w", err)
	}
	if err := s.dead.Flush(); err != nil {
		return fmt.Errorf("file: write dead letters: %w", err)
	}
	if s.access != nil {
		if err := s.access.Flush(); err != nil {
			return fmt.Errorf("file: write access: %w", err)
		}
	}
	return nil
}
