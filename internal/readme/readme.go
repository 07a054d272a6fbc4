package readme

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Block is one fenced code block of a Markdown document.
type Block struct {
	// Section is the title of the nearest "## " heading above the block
	// ("" before the first).
	Section string
	// Lang is the fence's info string: "sh", "go", or "".
	Lang string
	// Text is the lines between the fences, each ending in a newline.
	Text string
	// Line is the 1-based line number of the opening fence.
	Line int
}

// Parse returns the fenced code blocks (``` fences) of a Markdown document
// in order. An unclosed fence ends at the end of the document.
func Parse(data []byte) []Block {
	var (
		blocks  []Block
		section string
		cur     *Block
		text    strings.Builder
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.Text = text.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			text.WriteString(line)
			text.WriteByte('\n')
		case strings.HasPrefix(line, "```"):
			cur = &Block{Section: section, Lang: strings.TrimSpace(strings.TrimPrefix(line, "```")), Line: n}
			text.Reset()
		case strings.HasPrefix(line, "## "):
			section = strings.TrimSpace(strings.TrimPrefix(line, "## "))
		}
	}
	if cur != nil {
		cur.Text = text.String()
		blocks = append(blocks, *cur)
	}
	return blocks
}

// Load reads and parses the README.md of the module the working directory
// is in (the nearest directory upwards that has a go.mod).
func Load() ([]Block, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("readme: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, errors.New("readme: no go.mod above the working directory")
		}
		dir = parent
	}
	data, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		return nil, fmt.Errorf("readme: %w", err)
	}
	return Parse(data), nil
}

// Request is the HTTP request of one curl command.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte // nil without -d
}

// CurlRequests returns the requests of the curl commands of a shell script,
// in order. Lines ending in a backslash continue on the next line; lines
// that do not start with curl are skipped. Words are split as the shell
// does for single quotes, double quotes and backslashes; $NAME and ${NAME}
// outside single quotes expand from env (unset: empty). Options: -s, -S,
// -sS, -X METHOD, -H HEADER, -d DATA; one URL. Any other option is an error.
func CurlRequests(script string, env map[string]string) ([]Request, error) {
	var reqs []Request
	for _, cmd := range commands(script) {
		if !strings.HasPrefix(cmd, "curl ") {
			continue
		}
		words, err := shellWords(cmd, env)
		if err != nil {
			return nil, fmt.Errorf("readme: %q: %w", cmd, err)
		}
		req, err := curl(words[1:])
		if err != nil {
			return nil, fmt.Errorf("readme: %q: %w", cmd, err)
		}
		reqs = append(reqs, req)
	}
	return reqs, nil
}

// commands joins continued lines and drops comments and blank lines.
func commands(script string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(script, "\n") {
		if cur.Len() == 0 {
			t := strings.TrimSpace(line)
			if t == "" || strings.HasPrefix(t, "#") {
				continue
			}
			line = t
		} else {
			line = strings.TrimLeft(line, " \t")
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\"))
			continue
		}
		cur.WriteString(line)
		out = append(out, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// shellWords splits a command line into words.
func shellWords(s string, env map[string]string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	expand := func(i int) int { // s[i] == '$'; returns the index after the name
		j := i + 1
		braced := j < len(s) && s[j] == '{'
		if braced {
			j++
		}
		start := j
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if start == j {
			cur.WriteByte('$')
			return i + 1
		}
		cur.WriteString(env[s[start:j]])
		if braced && j < len(s) && s[j] == '}' {
			j++
		}
		return j
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			inWord = true
			i += end + 2
		case c == '"':
			inWord = true
			i++
			for {
				if i >= len(s) {
					return nil, errors.New("unterminated double quote")
				}
				switch s[i] {
				case '"':
					i++
				case '\\':
					if i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
						cur.WriteByte(s[i+1])
						i += 2
					} else {
						cur.WriteByte('\\')
						i++
					}
					continue
				case '$':
					i = expand(i)
					continue
				case '`':
					return nil, errors.New("command substitution is not supported")
				default:
					cur.WriteByte(s[i])
					i++
					continue
				}
				break
			}
		case c == '\\':
			if i+1 < len(s) {
				cur.WriteByte(s[i+1])
			}
			inWord = true
			i += 2
		case c == '$':
			inWord = true
			i = expand(i)
		case strings.IndexByte("|&;<>()`", c) >= 0:
			return nil, fmt.Errorf("shell operator %q is not supported", c)
		default:
			cur.WriteByte(c)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// curl interprets curl's arguments.
func curl(args []string) (Request, error) {
	req := Request{Header: http.Header{}}
	value := func(i int) (string, error) {
		if i+1 >= len(args) {
			return "", fmt.Errorf("%s needs a value", args[i])
		}
		return args[i+1], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch a {
		case "-s", "-S", "-sS", "-Ss", "-N":
		case "-X", "-H", "-d":
			v, err := value(i)
			if err != nil {
				return req, err
			}
			i++
			switch a {
			case "-X":
				req.Method = v
			case "-H":
				name, val, ok := strings.Cut(v, ":")
				if !ok {
					return req, fmt.Errorf("header %q has no colon", v)
				}
				req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(val))
			case "-d":
				req.Body = []byte(v)
			}
		default:
			if strings.HasPrefix(a, "-") {
				return req, fmt.Errorf("curl option %s is not supported here", a)
			}
			if req.URL != "" {
				return req, fmt.Errorf("two URLs: %s and %s", req.URL, a)
			}
			req.URL = a
		}
	}
	if req.URL == "" {
		return req, errors.New("no URL")
	}
	if req.Method == "" {
		req.Method = http.MethodGet
		if req.Body != nil {
			req.Method = http.MethodPost
		}
	}
	return req, nil
}
