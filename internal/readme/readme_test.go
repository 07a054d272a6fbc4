package readme

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	doc := "# T\n```sh\nbefore\n```\n## One\ntext\n```sh\na\n  b\n```\n### Sub\n```go\nx := 1\n```\n## Two\n```\nplain\n```\n```json\n{}"
	want := []Block{
		{Section: "", Lang: "sh", Text: "before\n", Line: 2},
		{Section: "One", Lang: "sh", Text: "a\n  b\n", Line: 7},
		{Section: "One", Lang: "go", Text: "x := 1\n", Line: 12},
		{Section: "Two", Lang: "", Text: "plain\n", Line: 16},
		{Section: "Two", Lang: "json", Text: "{}\n", Line: 19},
	}
	if got := Parse([]byte(doc)); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
	}
}

func TestCurlRequests(t *testing.T) {
	env := map[string]string{"TOKEN": "t0k", "HOST": "127.0.0.1:8080"}
	script := `# a comment
kcat -b x -t y
curl -sS http://$HOST/v1/a -H "Authorization: Bearer $TOKEN"
curl -sS -X PATCH 'http://127.0.0.1:8080/v1/b?dry_run=true' \
  -H "Authorization: Bearer ${TOKEN}" -H 'Content-Type: application/json' \
  -d '{"rule":{"all":[]},"s":"it''s"}'
curl -d "{\"q\":\"\$x\"}" http://h/v1/c
`
	got, err := CurlRequests(script, env)
	if err != nil {
		t.Fatal(err)
	}
	want := []Request{
		{Method: "GET", URL: "http://127.0.0.1:8080/v1/a", Header: http.Header{"Authorization": {"Bearer t0k"}}},
		{Method: "PATCH", URL: "http://127.0.0.1:8080/v1/b?dry_run=true",
			Header: http.Header{"Authorization": {"Bearer t0k"}, "Content-Type": {"application/json"}},
			Body:   []byte(`{"rule":{"all":[]},"s":"its"}`)},
		{Method: "POST", URL: "http://h/v1/c", Header: http.Header{}, Body: []byte(`{"q":"$x"}`)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CurlRequests =\n%+v\nwant\n%+v", got, want)
	}
}

func TestCurlRequestsRefuses(t *testing.T) {
	for _, script := range []string{
		"curl -k https://x/v1/a",
		"curl http://x/v1/a http://x/v1/b",
		"curl -X",
		"curl -H 'no colon' http://x",
		"curl -sS",
		"curl 'http://x",
		`curl "http://x`,
		"curl http://x | jq .",
		"curl `echo http://x`",
	} {
		if _, err := CurlRequests(script, nil); err == nil {
			t.Errorf("CurlRequests(%q) accepted it", script)
		} else if !strings.HasPrefix(err.Error(), "readme: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
}
