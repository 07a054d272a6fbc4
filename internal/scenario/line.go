package scenario

import (
	"io"

	"github.com/smartgroups/smartgroups/connectors/file"
)

// Line is one input record in the `process` input format (SPEC §5), whose
// codec is connectors/file's: Key nil is a JSON null key, Value nil a JSON
// null value (a tombstone), and Line.Record gives the record `process`
// reads from the line.
type Line = file.Line

// WriteNDJSON writes the lines, one JSON object per line, as
// file.WriteLines does.
func WriteNDJSON(w io.Writer, lines []Line) error { return file.WriteLines(w, lines) }
