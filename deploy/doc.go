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
// The package has no runtime code beyond DashboardMetrics; nothing in the
// engine imports it except to cross-check metric names.
package deploy
