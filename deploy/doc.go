// Package deploy holds the deployment assets of smartgroups and the tests that
// validate them.
//
// The assets are the repository's docker-compose.yml and Dockerfile (at the
// repository root) and, under this directory, the Prometheus scrape
// configuration (prometheus/), Grafana provisioning (grafana/provisioning/) and
// the Grafana dashboard (grafana/dashboards/smartgroups.json). The tests parse
// these files and cross-check them against each other: services named in
// depends_on exist, bind-mounted host paths exist, the smartgroups command uses
// real serve flags, published ports do not collide, Prometheus scrapes the
// smartgroups service on the port it listens on, and the dashboard's panels,
// datasource and metric names are consistent (see DashboardMetrics).
//
// The compose file is also loaded with compose-go, the loader of `docker
// compose` (interpolation, schema validation, normalization), which fails
// with the file's own message when the required SMARTGROUPS_API_TOKEN is
// not set. Then the smartgroups service's command line and environment, and
// the Dockerfile's default command with the token its comments document,
// run through the real binary (built by the test) until /readyz answers 200:
// the broker address becomes a loopback broker, the HTTP port a free one,
// the data directory a temporary one, and nothing else changes. A stack that
// cannot start fails these tests even though no Docker runs them.
//
// The package has no runtime code beyond DashboardMetrics; nothing in the
// engine imports it except to cross-check metric names.
package deploy
