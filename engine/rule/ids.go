package rule

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxIDBytes is the longest id accepted (SPEC §4).
const MaxIDBytes = 256

// CheckID validates an id: non-empty, at most MaxIDBytes, valid UTF-8, no NUL.
func CheckID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%s must be a non-empty string", what)
	case len(id) > MaxIDBytes:
		return fmt.Errorf("%s is %d bytes, longer than the limit of %d bytes", what, len(id), MaxIDBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("%s is not valid UTF-8", what)
	case strings.IndexByte(id, 0) >= 0:
		return fmt.Errorf("%s contains a NUL character", what)
	}
	return nil
}

// CheckKeyID validates an id that is also a key segment (spot, group): it
// may not contain '/'.
func CheckKeyID(what, id string) error {
	if err := CheckID(what, id); err != nil {
		return err
	}
	if strings.IndexByte(id, '/') >= 0 {
		return fmt.Errorf("%s %q contains '/', which is reserved as the key separator", what, id)
	}
	return nil
}
