package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/smartgroups/smartgroups/engine"
)

// MaxBodyBytes is the default limit on a request body (SPEC §4: 1 MiB);
// Config.MaxBodyBytes sets another.
const MaxBodyBytes = 1 << 20

// Error codes of the "code" field of error responses.
const (
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeBodyTooLarge     = "body_too_large"
	CodeInvalidJSON      = "invalid_json"
	CodeInvalidRequest   = "invalid_request"
	CodeInvalidCursor    = "invalid_cursor"
	CodeGroupNotFound    = "group_not_found"
	CodeMemberNotFound   = "member_not_found"
	CodeSchemaNotFound   = "schema_not_found"
	CodeEntryNotFound    = "blacklist_entry_not_found"
	CodeAlreadyExists    = "already_exists"
	CodeReferenced       = "referenced"
	CodeTypeChange       = "group_type_change"
	CodeConflict         = "conflict"
	CodeNotReady         = "not_ready"
	CodeNotApplied       = "not_applied"
	CodeUnavailable      = "unavailable"
	CodeNotOwner         = "not_owner"
	CodeInternal         = "internal"
)

// apiError is an error response: {"error": {"code", "message", "details"}}.
type apiError struct {
	Status  int            `json:"-"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...), Details: map[string]any{}}
}

func (e *apiError) with(k string, v any) *apiError {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	e.Details[k] = v
	return e
}

type errorBody struct {
	Error *apiError `json:"error"`
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="smartgroups"`)
	}
	writeJSON(w, e.Status, errorBody{e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(errorBody{errorf(status, CodeInternal, "encoding the response: %v", err)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// decodeBody decodes a JSON object request body into dst, refusing
// unknown fields, trailing data and bodies over the limit (API.serve
// limits every request body to Config.MaxBodyBytes).
func decodeBody(r *http.Request, dst any) *apiError {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return bodyError(err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return bodyError(err)
		}
		return errorf(http.StatusBadRequest, CodeInvalidJSON, "request body has data after the JSON object")
	}
	return nil
}

func bodyError(err error) *apiError {
	var tooBig *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return errorf(http.StatusRequestEntityTooLarge, CodeBodyTooLarge,
			"request body is larger than the limit of %s (max request bytes)", byteSize(tooBig.Limit)).with("limit_bytes", tooBig.Limit)
	case errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, CodeInvalidJSON, "request body is empty; a JSON object is expected")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, CodeInvalidJSON, "request body is not valid JSON: unexpected end of input")
	case errors.As(err, &syn):
		return errorf(http.StatusBadRequest, CodeInvalidJSON, "request body is not valid JSON: %v (at byte %d)", syn, syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errorf(http.StatusBadRequest, CodeInvalidJSON, "request body must be a JSON object, not a %s", typ.Value)
		}
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "field %s: expected %s, got a JSON %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return errorf(http.StatusBadRequest, CodeInvalidJSON, "request body is not valid JSON: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "true or false"
	}
	return "a number"
}

// fromRecordError maps a refused definition (engine.Defs.Check or the
// decoder) to a response.
func fromRecordError(e *engine.RecordError) *apiError {
	switch e.Code {
	case engine.CodeReferenced:
		return errorf(http.StatusConflict, CodeReferenced, "%s", e.Reason)
	case engine.CodeGroupTypeChange:
		return errorf(http.StatusBadRequest, CodeTypeChange, "%s", e.Reason)
	case engine.CodeUnknownGroup:
		return errorf(http.StatusNotFound, CodeGroupNotFound, "%s", e.Reason)
	case engine.CodeTooLarge:
		return errorf(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "%s", e.Reason)
	}
	return errorf(http.StatusBadRequest, string(e.Code), "%s", e.Reason)
}

// fromRecordErrorOf is fromRecordError for a definition whose id the user
// did not write (a preview, a create without an id): the reason does not
// name that id.
func fromRecordErrorOf(e *engine.RecordError, id string) *apiError {
	ae := fromRecordError(e)
	for _, prefix := range []string{fmt.Sprintf("smart group %q: ", id), fmt.Sprintf("group %q: ", id)} {
		if rest, ok := strings.CutPrefix(ae.Message, prefix); ok {
			ae.Message = rest
			break
		}
	}
	return ae
}

// fromEngineError maps an error of an engine query.
func fromEngineError(err error) *apiError {
	var re *engine.RecordError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &re):
		return fromRecordError(re)
	case errors.Is(err, engine.ErrNotOwned):
		return errorf(http.StatusConflict, CodeNotOwner, "%v", err)
	case errors.Is(err, engine.ErrUnknownGroup):
		return errorf(http.StatusNotFound, CodeGroupNotFound, "%s", strings.TrimPrefix(err.Error(), "engine: "))
	case errors.Is(err, engine.ErrUnknownMember):
		return errorf(http.StatusNotFound, CodeMemberNotFound, "%s", strings.TrimPrefix(err.Error(), "engine: "))
	}
	return errorf(http.StatusInternalServerError, CodeInternal, "%v", err)
}

// byteSize renders n bytes for a person: "1 MiB (1048576 bytes)" when n
// is a whole number of KiB or MiB, "n bytes" otherwise.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB (%d bytes)", n>>20, n)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB (%d bytes)", n>>10, n)
	}
	return fmt.Sprintf("%d bytes", n)
}
