package docs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/smartgroups/smartgroups/engine"
)

// tableCodes returns the first-column codes (`code`) of the table under
// the "## heading" of the markdown md, up to the next heading.
func tableCodes(t *testing.T, md, heading string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(md, "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("reference.md has no section %q", heading)
	}
	if i := strings.Index(rest, "\n#"); i >= 0 {
		rest = rest[:i]
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|")
	var codes []string
	for _, m := range row.FindAllStringSubmatch(rest, -1) {
		codes = append(codes, m[1])
	}
	return codes
}

// httpCodes returns the values of the Code* constants of the HTTP API
// (internal/httpapi/errors.go).
func httpCodes(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../internal/httpapi/errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "Code") || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					codes = append(codes, v)
				}
			}
		}
	}
	return codes
}

// sameSet reports the differences between the codes of the code and of
// the document.
func sameSet(t *testing.T, what string, declared, documented []string) {
	t.Helper()
	if len(declared) == 0 || len(documented) == 0 {
		t.Fatalf("%s: %d declared, %d documented", what, len(declared), len(documented))
	}
	doc := map[string]int{}
	for _, c := range documented {
		doc[c]++
	}
	dec := map[string]bool{}
	for _, c := range declared {
		dec[c] = true
		if doc[c] == 0 {
			t.Errorf("%s: %q is not in docs/reference.md", what, c)
		}
	}
	var extra []string
	for c, n := range doc {
		if n > 1 {
			t.Errorf("%s: %q is listed %d times in docs/reference.md", what, c, n)
		}
		if !dec[c] {
			extra = append(extra, c)
		}
	}
	sort.Strings(extra)
	for _, c := range extra {
		t.Errorf("%s: docs/reference.md lists %q, which the code does not declare", what, c)
	}
}

// TestReferenceListsEveryCode keeps docs/reference.md's tables equal to
// the dead-letter codes of package engine and the error codes of the HTTP
// API, and its limits table to the limit flags.
func TestReferenceListsEveryCode(t *testing.T) {
	b, err := os.ReadFile("reference.md")
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	var dl []string
	for _, c := range engine.Codes() {
		dl = append(dl, string(c))
	}
	sameSet(t, "dead-letter codes", dl, tableCodes(t, md, "Dead-letter codes"))
	sameSet(t, "HTTP API error codes", httpCodes(t), tableCodes(t, md, "HTTP API error codes"))

	limits := []string{"max-record-bytes", "max-rule-depth", "max-rule-nodes", "max-values", "max-tags", "max-request-bytes"}
	var documented []string
	for _, f := range regexp.MustCompile("(?m)^\\| `--([a-z-]+)` \\| `SMARTGROUPS_([A-Z_]+)` \\|").FindAllStringSubmatch(md, -1) {
		if env := "SMARTGROUPS_" + strings.ToUpper(strings.ReplaceAll(f[1], "-", "_")); env != "SMARTGROUPS_"+f[2] {
			t.Errorf("--%s is documented with %s, want %s", f[1], "SMARTGROUPS_"+f[2], env)
		}
		documented = append(documented, f[1])
	}
	sameSet(t, "limit flags", limits, documented)
}
