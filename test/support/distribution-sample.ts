// Distribution's sample configuration, verbatim: cmd/registry/config-example.yml in distribution/distribution
// (commit 1ba51c3572999ef52331f5c0ea790474348d44f5), which the configuration docs
// (docs/content/about/configuration.md) point to as "a starting point". Shared by the config unit tests and the
// e2e acceptance test, so both read the same text.
export const DISTRIBUTION_CONFIG_EXAMPLE = `version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  tag:
    concurrencylimit: 8
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: basic-realm
    path: /etc/registry
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`;
