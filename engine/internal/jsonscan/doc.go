// Package jsonscan reads JSON without encoding/json where the engine's hot
// paths need it: decoding member records and stored member states.
//
// Scan, Object and Array walk a JSON text in one pass. They accept exactly
// the texts encoding/json accepts (the RFC 8259 grammar, at most MaxDepth
// nested arrays and objects) and hand out each value as a Value: its exact
// bytes, as a json.RawMessage would hold them, its Kind, and whether a
// string holds escapes (one without escapes decodes to the bytes between
// its quotes). The scanner does not check UTF-8: callers check a whole text
// once before reading it.
//
// DecodeString, DecodeStrings, DecodeNumber, DecodeBool and IsNull read one
// raw JSON value as encoding/json would decode it into a Go string,
// []string, float64 or bool, taking a fast path for plain texts and falling
// back to encoding/json for the rest.
//
// The package depends on the standard library only.
package jsonscan
