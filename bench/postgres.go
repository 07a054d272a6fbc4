package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
)

// PostgresResult is the outcome of the PostgreSQL comparator: the final
// member state loaded into tables, then every smart group recomputed with
// one INSERT … SELECT per group, in dependency order.
type PostgresResult struct {
	Version                           string
	Load, Total                       time.Duration
	CPUSeconds                        float64 // server CPU during the recompute; -1 when the server is not local
	Members, Properties, Activities   int
	Groups, Memberships               int
	NaiveMemberships, GroupsDiffering int
}

// postgres loads the naive evaluator's final member state into PostgreSQL
// (members, properties, activities), translates every rule to SQL and
// times the recomputation of all groups.
func (r *runner) postgres(ctx context.Context) error {
	n := r.naiveModel
	if n == nil {
		return errors.New("the naive phase did not run")
	}
	conn, err := pgx.Connect(ctx, r.o.Postgres)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	pg := &PostgresResult{CPUSeconds: -1}
	r.res.Details.Postgres = pg
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&pg.Version); err != nil {
		return err
	}
	pg.Version = "PostgreSQL " + pg.Version
	schema := "smartgroups_bench_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	exec := func(sql string, args ...any) error {
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("%w\n%s", err, sql)
		}
		return nil
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		return err
	}
	defer func() { _, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") }()
	if err := exec("SET search_path TO " + schema); err != nil {
		return err
	}
	ddl := []string{
		`CREATE TABLE members (spot text, member text, status text, role text, language text, email text,
			first_name text, last_name text, title text, tags text[], static_groups text[],
			invited_at bigint, registered_at bigint, last_activity_at bigint,
			utm_source text, utm_medium text, utm_campaign text, utm_term text, utm_content text,
			PRIMARY KEY (spot, member))`,
		`CREATE TABLE properties (spot text, member text, kind "char", id text, txt text, num float8, ts bigint, bool boolean, arr text[],
			PRIMARY KEY (spot, member, kind, id))`,
		`CREATE TABLE activities (spot text, member text, type text, resource text, ts bigint)`,
		`CREATE TABLE memberships (spot text, grp text, member text)`,
	}
	for _, q := range ddl {
		if err := exec(q); err != nil {
			return err
		}
	}

	// Load.
	t := time.Now()
	var members, props, acts [][]any
	n.EachMember(func(spot, member string, m MemberState) {
		p := m.Profile
		var tags []string
		for _, x := range p.Tags {
			tags = append(tags, strings.ToLower(x))
		}
		utm := func(k string) any {
			if v, ok := p.UTM[k]; ok {
				return v
			}
			return nil
		}
		members = append(members, []any{spot, member, p.Status, p.Role, p.Language, p.Email, p.FirstName, p.LastName, p.Title,
			tags, p.StaticGroups, p.InvitedAt, p.RegisteredAt, p.LastActivityAt,
			utm("source"), utm("medium"), utm("campaign"), utm("term"), utm("content")})
		sd := n.Defs().Spot(spot)
		for _, kv := range []struct {
			kind    string
			vals    map[string]json.RawMessage
			schemas map[string]*rule.Schema
		}{{"c", m.Custom, sd.Properties}, {"f", m.Form, sd.Questions}} {
			for id, raw := range kv.vals {
				row := typedValue(kv.schemas[id], raw)
				if row == nil {
					continue
				}
				props = append(props, append([]any{spot, member, kv.kind, id}, row...))
			}
		}
		for _, as := range m.Activities {
			for _, a := range as {
				acts = append(acts, []any{spot, member, a.Type, a.Resource, a.TS})
			}
		}
	})
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"members", []string{"spot", "member", "status", "role", "language", "email", "first_name", "last_name", "title",
			"tags", "static_groups", "invited_at", "registered_at", "last_activity_at",
			"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"}, members},
		{"properties", []string{"spot", "member", "kind", "id", "txt", "num", "ts", "bool", "arr"}, props},
		{"activities", []string{"spot", "member", "type", "resource", "ts"}, acts},
	} {
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{schema, c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			return fmt.Errorf("copy %s: %w", c.table, err)
		}
	}
	for _, q := range []string{
		"CREATE INDEX ON activities (spot, member, type)",
		"CREATE INDEX ON memberships (spot, grp, member)",
		"ANALYZE",
	} {
		if err := exec(q); err != nil {
			return err
		}
	}
	pg.Load = time.Since(t)
	pg.Members, pg.Properties, pg.Activities = len(members), len(props), len(acts)
	members, props, acts = nil, nil, nil
	r.log("postgres: loaded %d members, %d property values, %d activities in %s", pg.Members, pg.Properties, pg.Activities,
		pg.Load.Round(time.Millisecond))

	// Translate every rule, then recompute all groups.
	now := n.Now()
	type stmt struct{ spot, group, sql string }
	var stmts []stmt
	for _, spot := range n.Defs().Spots() {
		sd := n.Defs().Spot(spot)
		for _, g := range sd.Order() {
			tr := &sqlTranslator{sd: sd, now: now}
			cond, err := tr.node(sd.Groups[g].Compiled().Root)
			if err != nil {
				return fmt.Errorf("group %s/%s: %w", spot, g, err)
			}
			stmts = append(stmts, stmt{spot, g, fmt.Sprintf(
				"INSERT INTO memberships SELECT m.spot, %s, m.member FROM members m WHERE m.spot = %s AND m.status IN ('accepted','invited','pending') AND (%s)",
				lit(g), lit(spot), cond)})
		}
	}
	pg.Groups = len(stmts)
	cpu0, cpuOK := r.pgCPU(ctx, conn)
	t = time.Now()
	if err := exec("TRUNCATE memberships"); err != nil {
		return err
	}
	for _, s := range stmts {
		if err := exec(s.sql); err != nil {
			return err
		}
	}
	pg.Total = time.Since(t)
	if cpu1, ok := r.pgCPU(ctx, conn); ok && cpuOK {
		pg.CPUSeconds = cpu1 - cpu0
	}
	// Compare with the naive evaluator recomputing at the same instant.
	sqlCounts := map[string]int{}
	rows, err := conn.Query(ctx, "SELECT spot || '/' || grp, count(*) FROM memberships GROUP BY 1")
	if err != nil {
		return err
	}
	for rows.Next() {
		var k string
		var c int
		if err := rows.Scan(&k, &c); err != nil {
			return err
		}
		sqlCounts[k] = c
		pg.Memberships += c
	}
	if err := rows.Err(); err != nil {
		return err
	}
	naive := n.Recompute()
	var differing []string
	for _, s := range stmts {
		k := s.spot + "/" + s.group
		pg.NaiveMemberships += naive[k]
		if naive[k] != sqlCounts[k] {
			differing = append(differing, fmt.Sprintf("%s (sql %d, naive %d)", k, sqlCounts[k], naive[k]))
		}
	}
	pg.GroupsDiffering = len(differing)
	if len(differing) > 0 {
		slices.Sort(differing)
		r.log("postgres: %d groups differ from the naive evaluator, e.g. %s", len(differing), differing[0])
	}
	r.log("postgres: recomputed %d groups (%d memberships) in %s, server CPU %s s", pg.Groups, pg.Memberships,
		pg.Total.Round(time.Millisecond), cpuText(pg.CPUSeconds))
	return nil
}

// typedValue returns the txt, num, ts, bool and arr columns of a kept
// value under its schema, or nil when it does not fit (unset).
func typedValue(s *rule.Schema, raw json.RawMessage) []any {
	if s == nil || raw == nil {
		return nil
	}
	row := []any{nil, nil, nil, nil, nil}
	switch s.Type {
	case rule.TypeText, rule.TypeSingleSelect:
		var v string
		if json.Unmarshal(raw, &v) != nil || (s.Type == rule.TypeSingleSelect && !s.HasOption(v)) {
			return nil
		}
		row[0] = v
	case rule.TypeNumber:
		var v float64
		if json.Unmarshal(raw, &v) != nil {
			return nil
		}
		row[1] = v
	case rule.TypeDate:
		var v string
		if json.Unmarshal(raw, &v) != nil {
			v = string(raw)
		}
		t, err := rule.ParseTime(v)
		if err != nil {
			return nil
		}
		row[2] = t
	case rule.TypeBoolean:
		var v bool
		if json.Unmarshal(raw, &v) != nil {
			return nil
		}
		row[3] = v
	case rule.TypeMultiSelect:
		var vs, kept []string
		if json.Unmarshal(raw, &vs) != nil {
			return nil
		}
		for _, v := range vs {
			if s.HasOption(v) {
				kept = append(kept, v)
			}
		}
		if len(kept) == 0 {
			return nil
		}
		row[4] = kept
	default:
		return nil
	}
	return row
}

// sqlTranslator turns a compiled rule into a SQL condition on "members m"
// with the semantics of SPEC §3: negative ops are NOT of the positive op
// (true when unset), other ops are false when unset.
type sqlTranslator struct {
	sd  *engine.SpotDefs
	now rule.Millis
}

func lit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func litArray(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = lit(s)
	}
	return "ARRAY[" + strings.Join(q, ",") + "]::text[]"
}

func (t *sqlTranslator) node(n *rule.Node) (string, error) {
	switch n.Kind {
	case rule.NodeAll, rule.NodeAny:
		if len(n.Children) == 0 {
			if n.Kind == rule.NodeAll {
				return "true", nil
			}
			return "false", nil
		}
		parts := make([]string, len(n.Children))
		for i, c := range n.Children {
			s, err := t.node(c)
			if err != nil {
				return "", err
			}
			parts[i] = "(" + s + ")"
		}
		op := " AND "
		if n.Kind == rule.NodeAny {
			op = " OR "
		}
		return strings.Join(parts, op), nil
	case rule.NodeNot:
		s, err := t.node(n.Children[0])
		return "NOT (" + s + ")", err
	case rule.NodeGroup:
		if g := t.sd.Groups[n.Group]; g != nil && g.Type == engine.GroupSmart {
			return fmt.Sprintf("EXISTS (SELECT 1 FROM memberships g WHERE g.spot = m.spot AND g.grp = %s AND g.member = m.member)", lit(n.Group)), nil
		}
		return fmt.Sprintf("coalesce(%s = ANY(m.static_groups), false)", lit(n.Group)), nil
	case rule.NodeActivity:
		cond := fmt.Sprintf("a.spot = m.spot AND a.member = m.member AND a.type = %s", lit(n.Activity))
		if len(n.Resources) > 0 {
			cond += " AND a.resource = ANY(" + litArray(n.Resources) + ")"
		}
		if n.When != nil {
			cond += " AND " + t.dateCond("a.ts", n.When.Op, n.When.A, n.When.B)
		}
		op := map[string]string{"gte": ">=", "lte": "<=", "eq": "="}[n.CountOp]
		if op == "" {
			return "", fmt.Errorf("count op %q", n.CountOp)
		}
		return fmt.Sprintf("(SELECT count(*) FROM activities a WHERE %s) %s %d", cond, op, n.CountN), nil
	case rule.NodeField:
		return t.field(n)
	}
	return "", fmt.Errorf("node kind %v", n.Kind)
}

func (t *sqlTranslator) dateCond(col, op string, a, b rule.Millis) string {
	switch op {
	case "before":
		return fmt.Sprintf("%s < %d", col, a)
	case "after":
		return fmt.Sprintf("%s > %d", col, a)
	case "between":
		return fmt.Sprintf("%s BETWEEN %d AND %d", col, a, b)
	case "within_last":
		return fmt.Sprintf("%s BETWEEN %d AND %d", col, t.now-a, t.now)
	case "more_than_ago":
		return fmt.Sprintf("%s < %d", col, t.now-a)
	}
	return "false"
}

// field translates an attribute trigger. valueExpr is the SQL of the value
// (NULL when unset); typ is its kind.
func (t *sqlTranslator) field(n *rule.Node) (string, error) {
	var expr, typ string // typ: string, status, set, fset (case-folded set), number, date, bool, select
	name, hasPrefix := strings.CutPrefix(n.Field, "profile.")
	prop := func(kind, id string, schemas map[string]*rule.Schema) error {
		s := schemas[id]
		if s == nil {
			return fmt.Errorf("undeclared %s", n.Field)
		}
		col := map[rule.ValueType]string{rule.TypeText: "txt", rule.TypeSingleSelect: "txt", rule.TypeNumber: "num",
			rule.TypeDate: "ts", rule.TypeBoolean: "bool", rule.TypeMultiSelect: "arr"}[s.Type]
		typ = map[rule.ValueType]string{rule.TypeText: "string", rule.TypeSingleSelect: "select", rule.TypeNumber: "number",
			rule.TypeDate: "date", rule.TypeBoolean: "bool", rule.TypeMultiSelect: "set"}[s.Type]
		expr = fmt.Sprintf("(SELECT p.%s FROM properties p WHERE p.spot = m.spot AND p.member = m.member AND p.kind = %s AND p.id = %s)",
			col, lit(kind), lit(id))
		return nil
	}
	switch {
	case strings.HasPrefix(n.Field, "custom."):
		if err := prop("c", strings.TrimPrefix(n.Field, "custom."), t.sd.Properties); err != nil {
			return "", err
		}
	case strings.HasPrefix(n.Field, "form."):
		if err := prop("f", strings.TrimPrefix(n.Field, "form."), t.sd.Questions); err != nil {
			return "", err
		}
	case hasPrefix && strings.HasPrefix(name, "utm."):
		expr, typ = "m.utm_"+strings.TrimPrefix(name, "utm."), "string"
	case hasPrefix:
		switch name {
		case "first_name", "last_name", "email", "title", "role", "language":
			expr, typ = "m."+name, "string"
		case "status":
			expr, typ = "m.status", "select"
		case "tags":
			expr, typ = "m.tags", "fset"
		case "static_groups":
			expr, typ = "m.static_groups", "set"
		case "invited_at", "registered_at":
			expr, typ = "m."+name, "date"
		case "last_activity_at":
			expr, typ = "greatest(m.last_activity_at, (SELECT max(a.ts) FROM activities a WHERE a.spot = m.spot AND a.member = m.member))", "date"
		default:
			return "", fmt.Errorf("field %s", n.Field)
		}
	default:
		return "", fmt.Errorf("field %s", n.Field)
	}
	isSet := expr + " IS NOT NULL"
	if typ == "set" || typ == "fset" {
		isSet = fmt.Sprintf("coalesce(cardinality(%s), 0) > 0", expr)
	}
	switch n.Op {
	case "is_set":
		return isSet, nil
	case "is_not_set":
		return "NOT (" + isSet + ")", nil
	}
	neg := map[string]string{"neq": "eq", "not_in": "in", "not_contains": "contains", "has_none": "has_any"}
	if pos, ok := neg[n.Op]; ok {
		s, err := t.positive(n, pos, expr, typ)
		return "NOT coalesce(" + s + ", false)", err
	}
	s, err := t.positive(n, n.Op, expr, typ)
	return "coalesce(" + s + ", false)", err
}

func (t *sqlTranslator) positive(n *rule.Node, op, expr, typ string) (string, error) {
	str := func() (string, error) {
		var v string
		err := json.Unmarshal(n.Value, &v)
		return strings.ToLower(v), err
	}
	strs := func(fold bool) (string, error) {
		var vs []string
		if err := json.Unmarshal(n.Value, &vs); err != nil {
			return "", err
		}
		if fold {
			for i := range vs {
				vs[i] = strings.ToLower(vs[i])
			}
		}
		return litArray(vs), nil
	}
	switch typ {
	case "string":
		switch op {
		case "eq", "contains", "starts_with", "ends_with":
			v, err := str()
			if err != nil {
				return "", err
			}
			switch op {
			case "eq":
				return fmt.Sprintf("lower(%s) = %s", expr, lit(v)), nil
			case "contains":
				return fmt.Sprintf("strpos(lower(%s), %s) > 0", expr, lit(v)), nil
			case "starts_with":
				return fmt.Sprintf("starts_with(lower(%s), %s)", expr, lit(v)), nil
			default:
				return fmt.Sprintf("right(lower(%s), %d) = %s", expr, len([]rune(v)), lit(v)), nil
			}
		case "in":
			a, err := strs(true)
			return fmt.Sprintf("lower(%s) = ANY(%s)", expr, a), err
		}
	case "select":
		a, err := strs(false)
		return fmt.Sprintf("%s = ANY(%s)", expr, a), err
	case "set", "fset":
		a, err := strs(typ == "fset")
		if err != nil {
			return "", err
		}
		switch op {
		case "has_any":
			return fmt.Sprintf("%s && %s", expr, a), nil
		case "has_all":
			return fmt.Sprintf("%s @> %s", expr, a), nil
		}
	case "number":
		if op == "between" {
			var lh [2]float64
			if err := json.Unmarshal(n.Value, &lh); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s BETWEEN %v AND %v", expr, lh[0], lh[1]), nil
		}
		var v float64
		if err := json.Unmarshal(n.Value, &v); err != nil {
			return "", err
		}
		sqlOp := map[string]string{"eq": "=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[op]
		if sqlOp == "" {
			break
		}
		return fmt.Sprintf("%s %s %v", expr, sqlOp, v), nil
	case "bool":
		if op == "is_true" {
			return expr, nil
		}
		return "NOT " + expr, nil
	case "date":
		a, b, err := dateOperands(op, n.Value)
		if err != nil {
			return "", err
		}
		return t.dateCond(expr, op, a, b), nil
	}
	return "", fmt.Errorf("op %s on %s", op, n.Field)
}

func dateOperands(op string, raw json.RawMessage) (rule.Millis, rule.Millis, error) {
	one := func(r json.RawMessage) (rule.Millis, error) {
		var s string
		if json.Unmarshal(r, &s) != nil {
			s = string(r)
		}
		return rule.ParseTime(s)
	}
	switch op {
	case "before", "after":
		a, err := one(raw)
		return a, 0, err
	case "between":
		var pair [2]json.RawMessage
		if err := json.Unmarshal(raw, &pair); err != nil {
			return 0, 0, err
		}
		a, err := one(pair[0])
		if err != nil {
			return 0, 0, err
		}
		b, err := one(pair[1])
		return a, b, err
	case "within_last", "more_than_ago":
		var d map[string]int64
		if err := json.Unmarshal(raw, &d); err != nil {
			return 0, 0, err
		}
		return d["days"]*86_400_000 + d["hours"]*3_600_000, 0, nil
	}
	return 0, 0, fmt.Errorf("date op %s", op)
}

// pgCPU returns the CPU seconds used so far by the PostgreSQL server of
// this connection, when the server runs on this machine and the platform
// tells (see postgresServerCPU).
func (r *runner) pgCPU(ctx context.Context, conn *pgx.Conn) (float64, bool) {
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return 0, false
	}
	return postgresServerCPU(pid)
}
