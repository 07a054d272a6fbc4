// Package readme reads the repository's README.md for the tests that keep
// its examples true.
//
// Parse splits a Markdown document into its fenced code blocks, each with
// the "##" section it is in, its language and its text. CurlRequests turns
// the curl commands of a shell block into the HTTP requests they send, so
// that a test can check them against docs/openapi.yaml; it understands the
// few curl options the README uses and refuses any other, so a README
// example cannot escape the check by using a new one. The shell commands
// themselves run in CI through scripts/readme-walkthrough.sh.
package readme
