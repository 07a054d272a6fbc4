package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The conditions builder edits the two-level rules of the admin UI
// (SPEC §3): conditions combined with AND/OR, each a list of triggers
// combined with AND/OR. Its whole state is the form: every action (add a
// condition or a trigger, remove one, change a selector, preview) posts
// the form, the server rebuilds the model from it, applies the action and
// renders the form again. Rules the builder cannot show (deeper trees,
// "not") are edited as JSON.

// Trigger kinds of the builder (the product's five trigger types).
const (
	kindProfile  = "profile"
	kindActivity = "activity"
	kindCustom   = "custom"
	kindForm     = "form"
	kindGroup    = "group"
)

var triggerKinds = []option{
	{kindProfile, "Profile information"}, {kindActivity, "Activity"}, {kindCustom, "Custom property"},
	{kindForm, "Registration form answer"}, {kindGroup, "Membership in another group"},
}

// Field types, as the builder offers operators for them.
const (
	ftString = "string"
	ftStatus = "status"
	ftSet    = "set"
	ftIDSet  = "idset"
	ftDate   = "date"
	ftNumber = "number"
	ftBool   = "boolean"
	ftSingle = "single_select"
	ftMulti  = "multi_select"
)

type fieldInfo struct {
	ID, Label, Type string
}

var profileFields = []fieldInfo{
	{"first_name", "First name", ftString}, {"last_name", "Last name", ftString}, {"email", "Email", ftString},
	{"title", "Title", ftString}, {"status", "Status", ftStatus}, {"role", "Role in the Spot", ftString},
	{"tags", "Tags", ftSet}, {"language", "Language", ftString},
	{"invited_at", "Invitation date", ftDate}, {"registered_at", "Registration date", ftDate},
	{"last_activity_at", "Last activity date", ftDate},
	{"utm.source", "UTM source", ftString}, {"utm.medium", "UTM medium", ftString}, {"utm.campaign", "UTM campaign", ftString},
	{"utm.term", "UTM term", ftString}, {"utm.content", "UTM content", ftString},
	{"static_groups", "Static groups", ftIDSet},
}

var opsByType = map[string][]option{
	ftString: {{"eq", "is"}, {"neq", "is not"}, {"contains", "contains"}, {"not_contains", "does not contain"},
		{"starts_with", "starts with"}, {"ends_with", "ends with"}, {"in", "is one of"}, {"not_in", "is none of"},
		{"is_set", "is set"}, {"is_not_set", "is not set"}},
	ftStatus: {{"in", "is one of"}, {"not_in", "is none of"}, {"is_set", "is set"}, {"is_not_set", "is not set"}},
	ftSet:    {{"has_any", "has any of"}, {"has_all", "has all of"}, {"has_none", "has none of"}, {"is_set", "is set"}, {"is_not_set", "is not set"}},
	ftIDSet:  {{"has_any", "has any of"}, {"has_all", "has all of"}, {"has_none", "has none of"}, {"is_set", "is set"}, {"is_not_set", "is not set"}},
	ftDate: {{"within_last", "within the last"}, {"more_than_ago", "more than … ago"}, {"before", "before"}, {"after", "after"},
		{"between", "between"}, {"is_set", "is set"}, {"is_not_set", "is not set"}},
	ftNumber: {{"eq", "="}, {"neq", "≠"}, {"lt", "<"}, {"lte", "≤"}, {"gt", ">"}, {"gte", "≥"}, {"between", "between"},
		{"is_set", "is set"}, {"is_not_set", "is not set"}},
	ftBool:   {{"is_true", "is true"}, {"is_false", "is false"}, {"is_set", "is set"}, {"is_not_set", "is not set"}},
	ftSingle: {{"in", "is one of"}, {"not_in", "is none of"}, {"is_set", "is set"}, {"is_not_set", "is not set"}},
	ftMulti:  {{"has_any", "has any of"}, {"has_all", "has all of"}, {"has_none", "has none of"}, {"is_set", "is set"}, {"is_not_set", "is not set"}},
}

var activityTypes = []option{
	{"registered_to_live", "Registered to a live"}, {"attended_live", "Attended a live"}, {"watched_replay", "Watched a replay"},
	{"joined_spot", "Joined the Spot"}, {"requested_to_join_spot", "Requested to join the Spot"}, {"left_spot", "Left the Spot"},
	{"started_course", "Started a course"}, {"completed_course", "Completed a course"}, {"opened_document", "Opened a document"},
	{"opened_link", "Opened a link"}, {"created_topic", "Created a topic"}, {"answered_topic", "Answered a topic"},
	{"started_learning_path", "Started a learning path"}, {"completed_learning_path", "Completed a learning path"},
}

var whenOps = []option{{"", "at any time"}, {"within_last", "within the last"}, {"more_than_ago", "more than … ago"},
	{"before", "before"}, {"after", "after"}, {"between", "between"}}

var countOps = []option{{"gte", "at least"}, {"lte", "at most"}, {"eq", "exactly"}}

var statuses = []option{{"accepted", "Accepted"}, {"invited", "Invited"}, {"pending", "Pending"}, {"deactivated", "Deactivated"},
	{"unsubscribed", "Unsubscribed"}, {"declined", "Declined"}, {"rejected", "Rejected"}}

// trigger is one trigger of the builder, as its form fields hold it.
type trigger struct {
	Kind   string
	Field  string // profile field, or property / question id
	Op     string
	Value  string   // a text, a number, a date, a count of days, or a comma-separated list
	Value2 string   // the upper bound of between
	Values []string // chosen options (statuses, select options, static groups)
	Unit   string   // days or hours, for within_last / more_than_ago

	Activity  string
	WhenOp    string
	WhenValue string
	WhenTo    string
	WhenUnit  string
	Resources []string
	CountOp   string
	Count     string

	Group string
	Err   string
}

type condition struct {
	Op       string // all or any
	Triggers []trigger
	Err      string
}

// builder is the state of the conditions builder and of the group form
// around it.
type builder struct {
	Name, Icon, Description string
	Type                    string // smart or static
	Top                     string // all or any, between conditions
	Conds                   []condition
	Raw                     string // the rule as JSON, in raw mode
	RawMode                 bool
	Err                     string            // an error not tied to a trigger
	FieldErr                map[string]string // name -> error
	Blacklist               []string          // members blacklisted from the preview
}

func newBuilder() *builder {
	return &builder{Type: "smart", Top: "all", Conds: []condition{{Op: "all", Triggers: []trigger{{Kind: kindProfile, Field: "tags", Op: "has_any"}}}}}
}

func (b *builder) fieldErr(name, msg string) {
	if b.FieldErr == nil {
		b.FieldErr = map[string]string{}
	}
	b.FieldErr[name] = msg
}

// parseBuilder reads the builder from a posted form.
func parseBuilder(f url.Values) *builder {
	b := &builder{Name: f.Get("name"), Icon: f.Get("icon"), Description: f.Get("description"), Type: f.Get("type"),
		Top: f.Get("top"), Raw: f.Get("raw"), RawMode: f.Get("raw_mode") == "1", Blacklist: f["bl"]}
	if b.Type != "static" {
		b.Type = "smart"
	}
	if b.Top != "any" {
		b.Top = "all"
	}
	for i := 0; ; i++ {
		p := fmt.Sprintf("c%d.", i)
		if _, ok := f[p+"op"]; !ok {
			break
		}
		c := condition{Op: f.Get(p + "op")}
		if c.Op != "any" {
			c.Op = "all"
		}
		for j := 0; ; j++ {
			q := fmt.Sprintf("%st%d.", p, j)
			if _, ok := f[q+"kind"]; !ok {
				break
			}
			c.Triggers = append(c.Triggers, trigger{
				Kind: f.Get(q + "kind"), Field: f.Get(q + "field"), Op: f.Get(q + "op"),
				Value: f.Get(q + "value"), Value2: f.Get(q + "value2"), Values: f[q+"values"], Unit: f.Get(q + "unit"),
				Activity: f.Get(q + "activity"), WhenOp: f.Get(q + "when_op"), WhenValue: f.Get(q + "when_value"),
				WhenTo: f.Get(q + "when_to"), WhenUnit: f.Get(q + "when_unit"),
				Resources: append(slices.Clone(f[q+"resources"]), splitList(f.Get(q+"resource_ids"))...),
				CountOp:   f.Get(q + "count_op"), Count: f.Get(q + "count"), Group: f.Get(q + "group"),
			})
		}
		b.Conds = append(b.Conds, c)
	}
	return b
}

// toForm writes the builder as the form fields parseBuilder reads.
func (b *builder) toForm(f url.Values) {
	f.Set("name", b.Name)
	f.Set("type", b.Type)
	f.Set("top", b.Top)
	for i, c := range b.Conds {
		f.Set(fmt.Sprintf("c%d.op", i), c.Op)
		for j, t := range c.Triggers {
			q := fmt.Sprintf("c%d.t%d.", i, j)
			for k, v := range map[string]string{"kind": t.Kind, "field": t.Field, "op": t.Op, "value": t.Value, "value2": t.Value2,
				"unit": t.Unit, "activity": t.Activity, "when_op": t.WhenOp, "when_value": t.WhenValue, "when_to": t.WhenTo,
				"when_unit": t.WhenUnit, "count_op": t.CountOp, "count": t.Count, "group": t.Group} {
				f.Set(q+k, v)
			}
			f[q+"values"] = t.Values
			f[q+"resources"] = t.Resources
		}
	}
}

// fieldType returns the type of a trigger's field ("" when unknown).
func (t *trigger) fieldType(cat *catalog) string {
	switch t.Kind {
	case kindProfile:
		for _, f := range profileFields {
			if f.ID == t.Field {
				return f.Type
			}
		}
	case kindCustom, kindForm:
		if s := cat.schema(t.Kind, t.Field); s != nil {
			return s.Type
		}
	}
	return ""
}

// normalize gives every trigger a field and an operator that fit, after a
// selector changed.
func (b *builder) normalize(cat *catalog) {
	for i := range b.Conds {
		for j := range b.Conds[i].Triggers {
			t := &b.Conds[i].Triggers[j]
			switch t.Kind {
			case kindProfile, kindCustom, kindForm:
				if t.fieldType(cat) == "" {
					t.Field = ""
					switch {
					case t.Kind == kindProfile:
						t.Field = "tags"
					case t.Kind == kindCustom && len(cat.Properties) > 0:
						t.Field = cat.Properties[0].ID
					case t.Kind == kindForm && len(cat.Questions) > 0:
						t.Field = cat.Questions[0].ID
					}
				}
				ops := opsByType[t.fieldType(cat)]
				if !slices.ContainsFunc(ops, func(o option) bool { return o.ID == t.Op }) {
					t.Op = ""
					if len(ops) > 0 {
						t.Op = ops[0].ID
					}
				}
				if t.Unit != "hours" {
					t.Unit = "days"
				}
			case kindActivity:
				if !slices.ContainsFunc(activityTypes, func(o option) bool { return o.ID == t.Activity }) {
					t.Activity = activityTypes[1].ID
				}
				if !slices.ContainsFunc(countOps, func(o option) bool { return o.ID == t.CountOp }) {
					t.CountOp = "gte"
				}
				if t.Count == "" {
					t.Count = "1"
				}
				if t.WhenUnit != "hours" {
					t.WhenUnit = "days"
				}
			case kindGroup:
			default:
				t.Kind = kindProfile
				t.Field, t.Op = "tags", "has_any"
			}
		}
	}
}

// apply runs a builder action: add-condition, add:<i>, remove:<i>:<j>,
// remove-condition:<i>, raw (switch to JSON), unblacklist:<member>,
// blacklist:<member>. It reports whether the action was one of these.
func (b *builder) apply(action string, cat *catalog) bool {
	verb, arg, _ := strings.Cut(action, ":")
	idx := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			return -1
		}
		return n
	}
	switch verb {
	case "add-condition":
		b.Conds = append(b.Conds, condition{Op: "all", Triggers: []trigger{{Kind: kindProfile}}})
	case "add":
		if i := idx(arg); i >= 0 && i < len(b.Conds) {
			b.Conds[i].Triggers = append(b.Conds[i].Triggers, trigger{Kind: kindProfile})
		}
	case "remove":
		is, js, _ := strings.Cut(arg, ":")
		i, j := idx(is), idx(js)
		if i >= 0 && i < len(b.Conds) && j >= 0 && j < len(b.Conds[i].Triggers) {
			b.Conds[i].Triggers = slices.Delete(b.Conds[i].Triggers, j, j+1)
			if len(b.Conds[i].Triggers) == 0 {
				b.Conds = slices.Delete(b.Conds, i, i+1)
			}
		}
	case "remove-condition":
		if i := idx(arg); i >= 0 && i < len(b.Conds) {
			b.Conds = slices.Delete(b.Conds, i, i+1)
		}
	case "raw":
		if r, err := b.rule(cat); err == nil {
			var buf bytes.Buffer
			_ = json.Indent(&buf, r, "", "  ")
			b.Raw = buf.String()
		}
		b.RawMode = true
	case "blacklist":
		if arg != "" && !slices.Contains(b.Blacklist, arg) {
			b.Blacklist = append(b.Blacklist, arg)
		}
	case "unblacklist":
		b.Blacklist = slices.DeleteFunc(b.Blacklist, func(m string) bool { return m == arg })
	default:
		return false
	}
	return true
}

// rule builds the rule JSON.
func (b *builder) rule(cat *catalog) (json.RawMessage, error) {
	if b.RawMode {
		raw := json.RawMessage(strings.TrimSpace(b.Raw))
		if !json.Valid(raw) {
			return nil, fmt.Errorf("the rule is not valid JSON")
		}
		return raw, nil
	}
	if len(b.Conds) == 0 {
		return nil, fmt.Errorf("add at least one condition (New condition)")
	}
	conds := make([]any, 0, len(b.Conds))
	for _, c := range b.Conds {
		ts := make([]any, 0, len(c.Triggers))
		for _, t := range c.Triggers {
			ts = append(ts, t.json(cat))
		}
		conds = append(conds, map[string]any{c.Op: ts})
	}
	return json.Marshal(map[string]any{b.Top: conds})
}

// list splits a comma-separated list.
func splitList(s string) []string {
	out := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// number returns a JSON number for s, or s itself (the API then says what
// is wrong).
func number(s string) any {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return json.Number(strconv.FormatFloat(f, 'f', -1, 64))
	}
	return s
}

// dateValue turns a date input (YYYY-MM-DD) into an RFC 3339 instant, the
// start of that day in UTC, or the end of it for the upper bound of a
// range; anything else is passed as is.
func dateValue(s string, end bool) any {
	s = strings.TrimSpace(s)
	if d, err := time.Parse("2006-01-02", s); err == nil {
		if end {
			d = d.Add(24*time.Hour - time.Millisecond)
		}
		return d.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	return s
}

func dateCond(op, v, to, unit string) any {
	switch op {
	case "within_last", "more_than_ago":
		return map[string]any{unit: number(v)}
	case "between":
		return []any{dateValue(v, false), dateValue(to, true)}
	}
	return dateValue(v, false)
}

func (t *trigger) json(cat *catalog) map[string]any {
	switch t.Kind {
	case kindActivity:
		out := map[string]any{"activity": t.Activity}
		rs := slices.DeleteFunc(slices.Clone(t.Resources), func(s string) bool { return s == "" })
		slices.Sort(rs)
		if rs = slices.Compact(rs); len(rs) > 0 {
			out["resources"] = rs
		}
		if t.WhenOp != "" {
			out["when"] = map[string]any{t.WhenOp: dateCond(t.WhenOp, t.WhenValue, t.WhenTo, t.WhenUnit)}
		}
		out["count"] = map[string]any{t.CountOp: number(t.Count)}
		return out
	case kindGroup:
		return map[string]any{"group": t.Group}
	}
	prefix := "profile."
	if t.Kind == kindCustom || t.Kind == kindForm {
		prefix = t.Kind + "."
	}
	out := map[string]any{"field": prefix + t.Field, "op": t.Op}
	switch t.Op {
	case "is_set", "is_not_set", "is_true", "is_false":
	case "in", "not_in", "has_any", "has_all", "has_none":
		if len(t.Values) > 0 {
			out["value"] = slices.DeleteFunc(slices.Clone(t.Values), func(s string) bool { return s == "" })
		} else {
			out["value"] = splitList(t.Value)
		}
	case "within_last", "more_than_ago", "before", "after":
		out["value"] = dateCond(t.Op, t.Value, t.Value2, t.Unit)
	case "between":
		if t.fieldType(cat) == ftNumber {
			out["value"] = []any{number(t.Value), number(t.Value2)}
		} else {
			out["value"] = dateCond("between", t.Value, t.Value2, "")
		}
	case "eq", "neq", "lt", "lte", "gt", "gte":
		if t.fieldType(cat) == ftNumber {
			out["value"] = number(t.Value)
		} else {
			out["value"] = t.Value
		}
	default:
		out["value"] = t.Value
	}
	return out
}

// fromRule loads a rule into the builder: the two-level form of the admin
// UI (or a single condition or trigger) becomes conditions; anything else
// is shown as JSON.
func (b *builder) fromRule(raw json.RawMessage) {
	b.Conds, b.RawMode = nil, false
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		b.toRaw(raw)
		return
	}
	kids, op, ok := boolNode(top)
	if !ok {
		// A lone trigger: one condition of one trigger.
		t, ok := triggerFrom(raw)
		if !ok {
			b.toRaw(raw)
			return
		}
		b.Top, b.Conds = "all", []condition{{Op: "all", Triggers: []trigger{t}}}
		return
	}
	b.Top = op
	for _, k := range kids {
		var obj map[string]json.RawMessage
		if json.Unmarshal(k, &obj) != nil {
			b.toRaw(raw)
			return
		}
		gk, gop, ok := boolNode(obj)
		if !ok {
			t, ok := triggerFrom(k)
			if !ok {
				b.toRaw(raw)
				return
			}
			b.Conds = append(b.Conds, condition{Op: "all", Triggers: []trigger{t}})
			continue
		}
		c := condition{Op: gop}
		for _, tk := range gk {
			t, ok := triggerFrom(tk)
			if !ok {
				b.toRaw(raw)
				return
			}
			c.Triggers = append(c.Triggers, t)
		}
		if len(c.Triggers) == 0 {
			b.toRaw(raw)
			return
		}
		b.Conds = append(b.Conds, c)
	}
}

func (b *builder) toRaw(raw json.RawMessage) {
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		buf.Reset()
		buf.Write(raw)
	}
	b.Conds, b.Raw, b.RawMode = nil, buf.String(), true
}

func boolNode(obj map[string]json.RawMessage) ([]json.RawMessage, string, bool) {
	if len(obj) != 1 {
		return nil, "", false
	}
	for _, op := range []string{"all", "any"} {
		if v, ok := obj[op]; ok {
			var kids []json.RawMessage
			if json.Unmarshal(v, &kids) != nil {
				return nil, "", false
			}
			return kids, op, true
		}
	}
	return nil, "", false
}

// triggerFrom reads one trigger of a rule into the builder's fields.
func triggerFrom(raw json.RawMessage) (trigger, bool) {
	var n struct {
		Field     string                     `json:"field"`
		Op        string                     `json:"op"`
		Value     json.RawMessage            `json:"value"`
		Activity  string                     `json:"activity"`
		Resources []string                   `json:"resources"`
		When      map[string]json.RawMessage `json:"when"`
		Count     map[string]json.Number     `json:"count"`
		Group     string                     `json:"group"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if dec.Decode(&n) != nil {
		return trigger{}, false
	}
	switch {
	case n.Group != "":
		return trigger{Kind: kindGroup, Group: n.Group}, true
	case n.Activity != "":
		t := trigger{Kind: kindActivity, Activity: n.Activity, Resources: n.Resources, CountOp: "gte", Count: "1", WhenUnit: "days"}
		for op, v := range n.Count {
			t.CountOp, t.Count = op, v.String()
		}
		for op, v := range n.When {
			t.WhenOp = op
			if !dateFrom(op, v, &t.WhenValue, &t.WhenTo, &t.WhenUnit) {
				return trigger{}, false
			}
		}
		return t, true
	case n.Field != "":
		t := trigger{Op: n.Op, Unit: "days"}
		switch {
		case strings.HasPrefix(n.Field, "profile."):
			t.Kind, t.Field = kindProfile, strings.TrimPrefix(n.Field, "profile.")
		case strings.HasPrefix(n.Field, "custom."):
			t.Kind, t.Field = kindCustom, strings.TrimPrefix(n.Field, "custom.")
		case strings.HasPrefix(n.Field, "form."):
			t.Kind, t.Field = kindForm, strings.TrimPrefix(n.Field, "form.")
		default:
			return trigger{}, false
		}
		if len(n.Value) == 0 {
			return t, true
		}
		switch n.Op {
		case "in", "not_in", "has_any", "has_all", "has_none":
			if json.Unmarshal(n.Value, &t.Values) != nil {
				return trigger{}, false
			}
			t.Value = strings.Join(t.Values, ", ")
		case "within_last", "more_than_ago", "before", "after", "between":
			if !dateFrom(n.Op, n.Value, &t.Value, &t.Value2, &t.Unit) {
				return trigger{}, false
			}
		default:
			var s string
			if json.Unmarshal(n.Value, &s) != nil {
				s = string(n.Value) // a number
			}
			t.Value = s
		}
		return t, true
	}
	return trigger{}, false
}

// dateFrom reads a date condition's value back into form fields.
func dateFrom(op string, v json.RawMessage, from, to, unit *string) bool {
	switch op {
	case "within_last", "more_than_ago":
		var d map[string]json.Number
		if json.Unmarshal(v, &d) != nil || len(d) != 1 {
			return false
		}
		for u, n := range d {
			*unit, *from = u, n.String()
		}
		return true
	case "between":
		var pair []json.RawMessage
		if json.Unmarshal(v, &pair) != nil || len(pair) != 2 {
			return false
		}
		*from, *to = dateInput(pair[0]), dateInput(pair[1])
		return true
	}
	*from = dateInput(v)
	return true
}

// dateInput renders an instant (or a number) for an input field: the day
// of an instant at the start or end of a UTC day, the instant otherwise.
func dateInput(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return string(v)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		t = t.UTC()
		if t.Equal(t.Truncate(24*time.Hour)) || t.Add(time.Millisecond).Equal(t.Add(time.Millisecond).Truncate(24*time.Hour)) {
			return t.Format("2006-01-02")
		}
	}
	return s
}

// rulePath matches the location an API rule error starts with:
// rule.<op>[i].<op>[j] (condition i, trigger j) or rule.<op>[i].
var rulePath = regexp.MustCompile(`^rule\.(?:all|any)\[(\d+)\](?:\.(?:all|any)\[(\d+)\])?`)

// placeError puts an API error under the trigger or condition it names,
// or at the top of the builder.
func (b *builder) placeError(msg string) {
	if !b.RawMode {
		if m := rulePath.FindStringSubmatch(msg); m != nil {
			i, _ := strconv.Atoi(m[1])
			if i < len(b.Conds) {
				if m[2] != "" {
					j, _ := strconv.Atoi(m[2])
					if j < len(b.Conds[i].Triggers) {
						b.Conds[i].Triggers[j].Err = msg
						return
					}
				}
				b.Conds[i].Err = msg
				return
			}
		}
	}
	b.Err = msg
}

// describe renders a trigger in the words of the builder: labels of
// fields, operators, options, activity types and groups.
func (t *trigger) describe(cat *catalog) string {
	label := func(opts []option, id string) string {
		for _, o := range opts {
			if o.ID == id {
				return o.Label
			}
		}
		return id
	}
	groupName := func(id string) string {
		for _, g := range cat.Groups {
			if g.ID == id {
				return g.Name
			}
		}
		return id
	}
	date := func(op, v, to, unit string) string {
		switch op {
		case "within_last", "more_than_ago":
			s := v + " " + unit
			if op == "more_than_ago" {
				return "more than " + s + " ago"
			}
			return "within the last " + s
		case "between":
			return "between " + v + " and " + to
		}
		return strings.ReplaceAll(op, "_", " ") + " " + v
	}
	switch t.Kind {
	case kindGroup:
		return "Member of " + groupName(t.Group)
	case kindActivity:
		s := label(activityTypes, t.Activity)
		if len(t.Resources) > 0 {
			titles := make([]string, 0, len(t.Resources))
			for _, id := range t.Resources {
				title := id
				for _, r := range cat.Resources {
					if r.ID == id {
						title = r.Title
					}
				}
				titles = append(titles, title)
			}
			s += " (" + strings.Join(titles, ", ") + ")"
		}
		if t.WhenOp != "" {
			s += " " + date(t.WhenOp, t.WhenValue, t.WhenTo, t.WhenUnit)
		}
		return s + ", " + label(countOps, t.CountOp) + " " + t.Count + " time(s)"
	}
	ft := t.fieldType(cat)
	var field string
	var opts []option
	switch t.Kind {
	case kindProfile:
		field = t.Field
		for _, f := range profileFields {
			if f.ID == t.Field {
				field = f.Label
			}
		}
		if ft == ftStatus {
			opts = statuses
		}
		if ft == ftIDSet {
			for _, g := range cat.Groups {
				opts = append(opts, option{g.ID, g.Name})
			}
		}
	default:
		field = t.Field
		if sc := cat.schema(t.Kind, t.Field); sc != nil {
			field, opts = sc.Label, sc.Options
		}
	}
	s := field + " " + label(opsByType[ft], t.Op)
	switch t.Op {
	case "is_set", "is_not_set", "is_true", "is_false":
		return s
	case "in", "not_in", "has_any", "has_all", "has_none":
		vals := t.Values
		if len(vals) == 0 {
			vals = splitList(t.Value)
		}
		ls := make([]string, 0, len(vals))
		for _, v := range vals {
			ls = append(ls, label(opts, v))
		}
		return s + " " + strings.Join(ls, ", ")
	case "within_last", "more_than_ago":
		return field + " " + date(t.Op, t.Value, t.Value2, t.Unit)
	case "between":
		return s + " " + t.Value + " and " + t.Value2
	}
	return s + " " + t.Value
}
