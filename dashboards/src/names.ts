// Names the dashboards and the Prometheus rules share: the recorded series, and the scrape job
// the alerts expect the collector under.

export const RULES = {
  /** Share of a vendor's hosts in each state, per control (every state in the denominator). */
  stateRatio: 'vendor_control_state:vcm_control_hosts:ratio',
  /** Share of a vendor's host-control pairs in each state, over all controls. */
  vendorStateRatio: 'vendor_state:vcm_control_hosts:ratio',
  /** When Prometheus first saw the current, unbroken failure of a host's control. */
  /** Active accounts with a factor of each strength (any, phishing_resistant), over the eligible ones. */
  mfaRatio: 'vendor_strength:vcm_sso_mfa_accounts:ratio',
  /** App assignments by sign-on class, over all assignments of active accounts. */
  assignmentRatio: 'vendor_sign_on_class:vcm_sso_app_assignments:ratio',
} as const;

/** The scrape job of the collector in prometheus.yml; VcmCollectorDown looks for it. */
export const JOB = 'vcm-collector';
