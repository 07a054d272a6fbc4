package deploy

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// enclosingAggregation returns the innermost aggregation operator (sum,
// max, min, avg, count, ...) whose parentheses enclose expr[pos], in the
// prefix form `op(...)` or `op by (labels) (...)`; "" when there is none.
// Function calls such as rate( are skipped.
func enclosingAggregation(expr string, pos int) string {
	aggs := map[string]bool{"sum": true, "max": true, "min": true, "avg": true, "count": true,
		"topk": true, "bottomk": true, "quantile": true, "stddev": true, "stdvar": true, "group": true}
	depth := 0
	for i := pos - 1; i >= 0; i-- {
		switch expr[i] {
		case ')':
			depth++
		case '(':
			if depth > 0 {
				depth--
				continue
			}
			if op := operatorBefore(expr[:i]); aggs[op] {
				return op
			}
		}
	}
	return ""
}

// operatorBefore is the name written before an opening parenthesis: an
// identifier, or the aggregation of a `by (...)`/`without (...)` clause.
func operatorBefore(s string) string {
	s = strings.TrimRight(s, " ")
	if strings.HasSuffix(s, ")") {
		depth := 0
		for i := len(s) - 1; i >= 0; i-- {
			if s[i] == ')' {
				depth++
			} else if s[i] == '(' {
				if depth--; depth == 0 {
					s = strings.TrimRight(s[:i], " ")
					break
				}
			}
		}
		switch {
		case strings.HasSuffix(s, "by"):
			s = strings.TrimRight(strings.TrimSuffix(s, "by"), " ")
		case strings.HasSuffix(s, "without"):
			s = strings.TrimRight(strings.TrimSuffix(s, "without"), " ")
		default:
			return ""
		}
	}
	m := regexp.MustCompile(`[a-z_]+$`).FindString(s)
	return m
}

// checkAggregation reports expressions that aggregate a metric across
// instances wrongly: a global gauge not under max(), a definitions counter
// without a topic matcher on "definitions", its topic="definitions"
// series not under max() or its member-topic series not under sum().
func checkAggregation(expr string) []string {
	var problems []string
	for _, m := range GlobalGauges {
		for _, loc := range regexp.MustCompile(regexp.QuoteMeta(m)+`\b`).FindAllStringIndex(expr, -1) {
			if agg := enclosingAggregation(expr, loc[0]); agg != "max" {
				problems = append(problems, fmt.Sprintf("%q: the global gauge %s is aggregated with %q, want max()", expr, m, agg))
			}
		}
	}
	for _, m := range DefinitionsCounters {
		re := regexp.MustCompile(regexp.QuoteMeta(m) + `\b(\{[^}]*\})?`)
		for _, loc := range re.FindAllStringSubmatchIndex(expr, -1) {
			matchers := ""
			if loc[2] >= 0 {
				matchers = expr[loc[2]:loc[3]]
			}
			agg := enclosingAggregation(expr, loc[0])
			switch {
			case strings.Contains(matchers, `topic="definitions"`):
				if agg != "max" {
					problems = append(problems, fmt.Sprintf("%q: %s of the definitions topic is aggregated with %q, want max()", expr, m, agg))
				}
			case strings.Contains(matchers, `topic!="definitions"`):
				if agg != "sum" {
					problems = append(problems, fmt.Sprintf("%q: %s of the member topics is aggregated with %q, want sum()", expr, m, agg))
				}
			default:
				problems = append(problems, fmt.Sprintf("%q: %s is counted by every instance for the definitions topic: select topic=\"definitions\" (max) and topic!=\"definitions\" (sum) apart", expr, m))
			}
		}
	}
	return problems
}

// TestDashboardAggregation checks every dashboard expression with
// checkAggregation, so that a panel's value does not grow with the number
// of instances.
func TestDashboardAggregation(t *testing.T) {
	d := loadDashboard(t)
	n := 0
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			for _, problem := range checkAggregation(tg.Expr) {
				t.Errorf("panel %q: %s", p.Title, problem)
			}
			for _, m := range append(append([]string{}, GlobalGauges...), DefinitionsCounters...) {
				if strings.Contains(tg.Expr, m) {
					n++
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("the dashboard queries none of the metrics whose aggregation is checked")
	}
}

func TestCheckAggregation(t *testing.T) {
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{`max(smartgroups_groups)`, true},
		{`max by (job) (smartgroups_groups)`, true},
		{`sum(smartgroups_groups)`, false},
		{`smartgroups_groups`, false},
		{`sum(rate(smartgroups_dead_letters_total[5m]))`, false},
		{`sum by (topic, reason) (rate(smartgroups_dead_letters_total{topic!="definitions"}[5m])) or max by (topic, reason) (rate(smartgroups_dead_letters_total{topic="definitions"}[5m]))`, true},
		{`sum(rate(smartgroups_records_consumed_total{topic="definitions"}[1m]))`, false},
		{`max(rate(smartgroups_records_consumed_total{topic!="definitions"}[1m]))`, false},
		{`sum(smartgroups_members)`, true},
	} {
		if got := checkAggregation(tc.expr); (len(got) == 0) != tc.ok {
			t.Errorf("checkAggregation(%s) = %q, want ok=%v", tc.expr, got, tc.ok)
		}
	}
}
