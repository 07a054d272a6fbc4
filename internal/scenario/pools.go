package scenario

import "github.com/smartgroups/smartgroups/engine/rule"

// The vocabularies scenarios draw from. Pools are small on purpose, so that
// rules written from them match some members and miss others.

var spotIDs = []string{"acme", "globex", "initech"}

var statuses = []string{"accepted", "invited", "pending", "deactivated", "unsubscribed", "declined", "rejected"}

var eligibleStatuses = []string{"accepted", "invited", "pending"}

// stringPools are the values of the profile string fields and utm keys;
// rules pick operands from the same pools (with the case changed).
var stringPools = map[string][]string{
	"first_name":   {"Ada", "Grace", "Élodie", "Zoë", "Jürgen", "Σοφία", "Kelvin", "Linus"},
	"last_name":    {"Lovelace", "Hopper", "Dupont", "Straße", "O'Brien", "Nakamura", "Kowalski"},
	"email":        {"ada@example.com", "grace@EXAMPLE.org", "zoe@mail.example", "linus@kernel.example", "kelvin@lab.example"},
	"title":        {"Engineer", "Head of Growth", "CTO", "Community Manager", "ΣΥΜΒΟΥΛΟΣ"},
	"role":         {"admin", "member", "moderator", "role-42"},
	"language":     {"fr", "en-GB", "en-gb", "EN", "de", "pt-BR"},
	"utm.source":   {"google", "newsletter", "twitter", "partner"},
	"utm.medium":   {"cpc", "email", "social"},
	"utm.campaign": {"spring-2026", "launch", "black-friday"},
	"utm.term":     {"smart groups", "community"},
	"utm.content":  {"banner", "footer"},
}

var profileStringFields = []string{"first_name", "last_name", "email", "title", "role", "language"}

var utmKeys = []string{"source", "medium", "campaign", "term", "content"}

var profileDateFields = []string{"invited_at", "registered_at", "last_activity_at"}

var tagPool = []string{"vip", "Beta-Tester", "early-adopter", "ωmega", "straße", "kelvin", "speaker"}

// staticGroupIDs are the static groups of every spot; "st9" is never
// defined but members and rules may name it.
var staticGroupIDs = []string{"st1", "st2", "st3"}

var staticGroupRefs = []string{"st1", "st2", "st3", "st9"}

var textPool = []string{"hello", "Bonjour", "ÉTÉ", "go gopher", "Kelvin", "straße", "data"}

var stringOps = []string{"eq", "neq", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with"}

var setOps = []string{"has_any", "has_all", "has_none"}

var numberOps = []string{"eq", "neq", "lt", "lte", "gt", "gte", "between"}

var dateOps = []string{"before", "after", "between", "within_last", "more_than_ago"}

// resources are the small resource-id pools of the activity types that
// carry a resource.
var resources = map[string][]string{
	"registered_to_live":      {"live-1", "live-2", "live-3"},
	"attended_live":           {"live-1", "live-2", "live-3"},
	"watched_replay":          {"live-1", "live-2", "live-3"},
	"started_course":          {"course-1", "course-2", "course-3"},
	"completed_course":        {"course-1", "course-2", "course-3"},
	"opened_document":         {"doc-1", "doc-2", "doc-3"},
	"opened_link":             {"link-1", "link-2"},
	"created_topic":           {"topic-1", "topic-2", "topic-3"},
	"answered_topic":          {"topic-1", "topic-2", "topic-3"},
	"started_learning_path":   {"path-1", "path-2"},
	"completed_learning_path": {"path-1", "path-2"},
}

var activityTypes = rule.ActivityTypes

// schemaSpec is one custom property or form question of the catalogue:
// its natural type and options, the options it may gain later, and whether
// it is declared only later in the stream.
type schemaSpec struct {
	kind    string // property or question
	id      string
	typ     string
	options []string
	extra   []string
	late    bool
}

var schemaCatalogue = []schemaSpec{
	{kind: "property", id: "plan", typ: "single_select", options: []string{"free", "pro", "team"}, extra: []string{"enterprise", "gold"}},
	{kind: "property", id: "seats", typ: "number"},
	{kind: "property", id: "renewal", typ: "date"},
	{kind: "property", id: "beta", typ: "boolean"},
	{kind: "property", id: "interests", typ: "multi_select", options: []string{"ai", "go", "rust", "design"}, extra: []string{"data", "ml"}},
	{kind: "property", id: "nickname", typ: "text"},
	{kind: "property", id: "region", typ: "text", extra: []string{"emea", "amer", "apac"}},
	{kind: "property", id: "legacy_score", typ: "number", late: true},
	{kind: "question", id: "company_size", typ: "single_select", options: []string{"1-10", "11-50", "51-200"}, extra: []string{"200+"}},
	{kind: "question", id: "goals", typ: "multi_select", options: []string{"learn", "network", "hire"}, extra: []string{"sell"}},
	{kind: "question", id: "age", typ: "number"},
	{kind: "question", id: "bio", typ: "text"},
	{kind: "question", id: "start_date", typ: "date"},
	{kind: "question", id: "consent", typ: "boolean"},
	{kind: "question", id: "referral", typ: "single_select", options: []string{"friend", "ad", "search"}, late: true},
}

// undeclaredIDs are value ids that are never declared.
var undeclaredIDs = []string{"x_color", "x_score", "x_flags"}

var valueTypes = []string{"text", "number", "date", "boolean", "single_select", "multi_select"}

// linkedResources are the resources groups link to (SPEC §2.4): few, so
// that groups share them.
var linkedResources = []struct{ id, typ string }{
	{"live-1", "live"}, {"live-2", "live"}, {"course-1", "course"},
	{"channel-1", "channel"}, {"forum-1", "forum"}, {"collection-1", "collection"},
}
