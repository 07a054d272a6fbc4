package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Shapes of the API's answers the console reads (docs/openapi.yaml).

type spotItem struct {
	ID     string `json:"id"`
	Groups int    `json:"groups"`
}

type group struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Icon        string          `json:"icon"`
	Description string          `json:"description"`
	Rule        json.RawMessage `json:"rule"`
	Resources   []resource      `json:"resources"`
	MemberCount *int            `json:"member_count"`
}

type resource struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	Title string `json:"title"`
}

type option struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

type schema struct {
	ID      string   `json:"id"`
	Label   string   `json:"label"`
	Type    string   `json:"type"`
	Options []option `json:"options"`
}

type memberSummary struct {
	Member    string `json:"member"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	Status    string `json:"status"`
	Role      string `json:"role"`
}

// Name is the member's display name.
func (m memberSummary) Name() string {
	n := strings.TrimSpace(m.FirstName + " " + m.LastName)
	if n == "" {
		return m.Member
	}
	return n
}

type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// spots returns the spots the session may see.
func (s *req) spots() ([]spotItem, *apiErr) {
	res := s.call(http.MethodGet, "/v1/spots", nil)
	if e := res.err(); e != nil {
		return nil, e
	}
	var l list[spotItem]
	if err := res.decode(&l); err != nil {
		return nil, &apiErr{Code: "internal", Message: err.Error()}
	}
	return l.Items, nil
}

// getList reads every page of a list endpoint (up to max items).
func getList[T any](s *req, path string, maxItems int) ([]T, *apiErr) {
	var out []T
	cursor := ""
	for {
		p := path
		sep := "?"
		if strings.Contains(p, "?") {
			sep = "&"
		}
		p += sep + "limit=1000"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		res := s.call(http.MethodGet, p, nil)
		if e := res.err(); e != nil {
			return nil, e
		}
		var l list[T]
		if err := res.decode(&l); err != nil {
			return nil, &apiErr{Code: "internal", Message: err.Error()}
		}
		out = append(out, l.Items...)
		if l.NextCursor == "" || len(out) >= maxItems {
			return out, nil
		}
		cursor = l.NextCursor
	}
}

func (s *req) groups(spot string) ([]group, *apiErr) {
	gs, e := getList[group](s, spotPath(spot)+"/groups", 100000)
	if e != nil {
		return nil, e
	}
	slices.SortFunc(gs, func(a, b group) int {
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return gs, nil
}

func (s *req) group(spot, id string) (group, *apiErr) {
	res := s.call(http.MethodGet, spotPath(spot)+"/groups/"+esc(id), nil)
	var g group
	if e := res.err(); e != nil {
		return g, e
	}
	if err := res.decode(&g); err != nil {
		return g, &apiErr{Code: "internal", Message: err.Error()}
	}
	return g, nil
}

// catalog is what the conditions builder offers for a spot: its custom
// properties, form questions and groups.
type catalog struct {
	Spot       string
	Properties []schema
	Questions  []schema
	Groups     []group
	Resources  []resource // linked resources of the spot's groups, for title filters
}

func (s *req) catalog(spot string) (*catalog, *apiErr) {
	props, e := getList[schema](s, spotPath(spot)+"/properties", 10000)
	if e != nil {
		return nil, e
	}
	qs, e := getList[schema](s, spotPath(spot)+"/questions", 10000)
	if e != nil {
		return nil, e
	}
	gs, e := s.groups(spot)
	if e != nil {
		return nil, e
	}
	cat := &catalog{Spot: spot, Properties: props, Questions: qs, Groups: gs}
	seen := map[string]bool{}
	for _, g := range gs {
		for _, r := range g.Resources {
			if !seen[r.ID] {
				seen[r.ID] = true
				cat.Resources = append(cat.Resources, r)
			}
		}
	}
	slices.SortFunc(cat.Resources, func(a, b resource) int { return strings.Compare(a.Title, b.Title) })
	return cat, nil
}

func (c *catalog) schema(kind, id string) *schema {
	l := c.Properties
	if kind == "form" {
		l = c.Questions
	}
	for i := range l {
		if l[i].ID == id {
			return &l[i]
		}
	}
	return nil
}
