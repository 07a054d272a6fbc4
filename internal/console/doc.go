// Package console is the admin console of smartgroups: the screens of the
// product (groups table, create drawer with the conditions builder and
// the preview, group details with General, Members and Resources) plus a
// member page, a live feed of membership changes and group sizes over
// time, served as HTML by serve and demo at "/".
//
// # Model
//
// Pages are rendered on the server with html/template; htmx (vendored,
// embedded with the templates and the stylesheet) turns the builder's
// form posts into partial page swaps, and uPlot draws the size chart. No
// page needs JavaScript to work, except the live parts (counts, feed,
// chart).
//
// Every screen is backed by the HTTP API of SPEC §6: the console calls
// the /v1 handler in-process with the signed-in token (Config.API), and
// renders what it answers, errors included. It holds no data and no
// rule logic of its own, so a spot token sees its spot only, and reads
// spread over instances exactly as the API's do.
//
// # Sessions
//
// The sign-in form takes an API token, checks it with GET /v1/spots and
// sets a session cookie (HttpOnly, SameSite=Strict) holding the token,
// sealed with AES-GCM under a key derived from the configured tokens, so
// that any instance of a deployment opens it. Without tokens (loopback
// only) there is no sign-in. Every write carries a CSRF token (an HMAC of
// the session's nonce) in a form field or the X-CSRF-Token header, and a
// browser's Origin header must name this host.
//
// # The conditions builder
//
// The builder's whole state is its form: conditions c<i> with an AND/OR
// operator, triggers c<i>.t<j> with their selectors. Every action (add or
// remove a trigger or a condition, change a selector, preview, blacklist
// from the preview, create) posts the form; the server rebuilds the model,
// applies the action and renders the form again. Rules the builder cannot
// show (deeper trees, "not") are edited as JSON. An API error whose
// location names a trigger (rule.all[0].any[1]) is shown under it.
//
// # Where things are
//
// console.go (Config, routes, the in-process API client, rendering),
// session.go (sealed cookies, CSRF), auth.go (sign-in and out), model.go
// (the API's shapes the pages read), builder.go (the conditions builder:
// form, model, rule JSON both ways, error placement, descriptions),
// pages.go (groups, create, group details, members, blacklist,
// resources), live.go (member page, live feed, size series), funcs.go
// (template functions, the explain tree), templates/ and static/ (CSS,
// the small script, vendored htmx and uPlot with their licences).
package console
