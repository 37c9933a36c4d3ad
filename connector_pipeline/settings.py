"""Environment variable names, defaults and the constants every layer shares.

Every tunable number lives here so that code elsewhere reads as intent, not magic.
"""

from __future__ import annotations

import os
from pathlib import Path

# --- environment variable names (the same everywhere: resources, CLI, receiver) ---
ENV_INTACCT_SENDER_ID = "INTACCT_SENDER_ID"
ENV_INTACCT_SENDER_PASSWORD = "INTACCT_SENDER_PASSWORD"
ENV_INTACCT_COMPANY_ID = "INTACCT_COMPANY_ID"
ENV_INTACCT_USER_ID = "INTACCT_USER_ID"
ENV_INTACCT_USER_PASSWORD = "INTACCT_USER_PASSWORD"
ENV_INTACCT_ENTITY_ID = "INTACCT_ENTITY_ID"
ENV_INTACCT_ENDPOINT_URL = "INTACCT_ENDPOINT_URL"
ENV_INTACCT_ALLOW_CUSTOM_ENDPOINT = "INTACCT_ALLOW_CUSTOM_ENDPOINT"
ENV_INTACCT_SOURCE_OBJECTS = "INTACCT_SOURCE_OBJECTS"
ENV_ZENDESK_SUBDOMAIN = "ZENDESK_SUBDOMAIN"
ENV_ZENDESK_BASE_URL = "ZENDESK_BASE_URL"
# Lets ZENDESK_BASE_URL be plain http (the sandbox tooling sets it).
ENV_ZENDESK_ALLOW_CUSTOM_BASE_URL = "ZENDESK_ALLOW_CUSTOM_BASE_URL"
ENV_ZENDESK_EMAIL = "ZENDESK_EMAIL"
ENV_ZENDESK_API_TOKEN = "ZENDESK_API_TOKEN"
ENV_ZENDESK_OAUTH_TOKEN = "ZENDESK_OAUTH_TOKEN"
ENV_ZENDESK_OAUTH_REFRESH_TOKEN = "ZENDESK_OAUTH_REFRESH_TOKEN"
ENV_ZENDESK_WEBHOOK_SECRETS = "ZENDESK_WEBHOOK_SECRETS"
ENV_STAGING_DATABASE_URL = "STAGING_DATABASE_URL"
ENV_ML_CONNECTOR_HOME = "ML_CONNECTOR_HOME"

# --- defaults ---
DEFAULT_INTACCT_ENDPOINT_URL = "https://api.intacct.com/ia/xml/xmlgw.phtml"
DEFAULT_ML_CONNECTOR_HOME = "./.ml-connector"
STAGING_SQLITE_FILENAME = "staging.db"
# Written by `ml-connector demo`: the URL of the ledger it runs on.
STAGING_URL_FILENAME = "staging-url"

# --- ledger ---
SQLITE_BUSY_TIMEOUT_MS = 30_000
UPSERT_CHUNK_ROWS = 1_000
INBOX_CLAIM_LEASE_SECONDS = 600
INBOX_DEFAULT_BATCH = 500


def ml_connector_home() -> Path:
    """The folder that holds local state (SQLite ledger, Dagster home in the demo)."""
    return Path(os.environ.get(ENV_ML_CONNECTOR_HOME, DEFAULT_ML_CONNECTOR_HOME)).resolve()


def staging_database_url() -> str:
    """The ledger every part uses (Dagster resources, CLI, receiver), by
    `staging_database_source()`."""
    return staging_database_source()[0]


def staging_database_source() -> tuple[str, str]:
    """The ledger URL and where it came from: `STAGING_DATABASE_URL`; else the URL that
    `ml-connector demo` wrote to `ML_CONNECTOR_HOME/staging-url` (so the CLI reads the
    ledger the demo's runs write); else a SQLite file under `ML_CONNECTOR_HOME`."""
    url = os.environ.get(ENV_STAGING_DATABASE_URL)
    if url:
        return url, ENV_STAGING_DATABASE_URL
    pointer = ml_connector_home() / STAGING_URL_FILENAME
    if pointer.is_file():
        written = pointer.read_text().strip()
        if written:
            return written, str(pointer)
    path = ml_connector_home() / STAGING_SQLITE_FILENAME
    return f"sqlite:///{path}", f"the default under {ENV_ML_CONNECTOR_HOME}"


# --- both API clients (connector_pipeline/guarded_http.py) ---
# Retry-After below this (negative, zero, a past date) still waits this long: no
# back-to-back retries. Above the maximum (`inf`, 999999, a far-future date) nothing waits:
# the call fails with a typed error instead of parking a Dagster step for days.
RETRY_AFTER_MIN_S = 1.0
RETRY_AFTER_MAX_S = 15 * 60.0

# --- Intacct client and sandbox (owned by the Intacct layer) ---
# Protocol limits documented by Sage (reference/intacct-api.md, section 6).
INTACCT_QUERY_MAX_PAGESIZE = 2_000
INTACCT_READBYQUERY_MAX_PAGESIZE = 1_000
INTACCT_MAX_RECORDS_PER_WRITE = 100
INTACCT_MAX_KEYS_PER_READ = 100
INTACCT_MAX_IN_VALUES = 1_000
INTACCT_DTD_VERSION = "3.0"
INTACCT_ENDPOINT_HOST_SUFFIX = ".intacct.com"
INTACCT_CONTENT_TYPE = "application/xml"
# Responses larger than this are refused rather than parsed (a 2,000-record page is ~5 MiB).
INTACCT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# Session reuse: the earlier of `sessiontimeout - margin` and a fixed age (DESIGN.md, 5).
INTACCT_SESSION_RENEW_MARGIN_S = 300.0
INTACCT_SESSION_MAX_AGE_S = 50 * 60.0
# Transport and retry budget (the SDKs use 30-300 s timeouts; we stay well under Dagster's).
INTACCT_TIMEOUT_S = 120.0
# Overall limit for one HTTP request, however the server paces its bytes.
INTACCT_REQUEST_DEADLINE_S = 180.0
INTACCT_RETRY_BUDGET_S = 120.0
INTACCT_MAX_ATTEMPTS = 6
INTACCT_BACKOFF_BASE_S = 0.5
INTACCT_BACKOFF_MAX_S = 30.0
# The gateway allows one API request at a time per company at the standard level of service.
INTACCT_MAX_CONCURRENT_REQUESTS = 1
INTACCT_USER_AGENT = "ml-connector/0.1 (+intacct-xml)"
# Rounds of "look up, create the rest" when write answers are lost, before the step gives
# up and leaves the rest to Dagster's retry.
INTACCT_WRITE_ROUNDS = 5
# Ticket-record outcomes are recorded in the ledger every this many records (ten write
# calls) and whenever a write fails, so an unknown answer keeps every confirmed write
# before it; a SIGKILL can lose at most one slice's links (found again by ticket id).
INTACCT_RECORD_SLICE = 10 * INTACCT_MAX_RECORDS_PER_WRITE
# The ticket-record load reads, plans and writes staged tickets this many at a time
# (keyset by ticket id): memory follows a page, not the backlog, and one `query` with
# `in` (<= INTACCT_MAX_IN_VALUES) looks up a whole page's existing records.
INTACCT_TICKET_LOAD_PAGE = INTACCT_MAX_IN_VALUES
# Platform custom object holding Zendesk tickets. RVENDOR carries the related VENDOR's
# RECORDNO (UNCONFIRMED in the reference: see connector_pipeline/sandbox/intacct_data.py).
INTACCT_TICKET_OBJECT = "zendesk_ticket"
INTACCT_TICKET_KEY_FIELD = "id"
INTACCT_TICKET_VENDOR_FIELD = "RVENDOR"
INTACCT_TICKET_FIELDS = (
    "name",
    "ticket_id",
    "subject",
    "status",
    "priority",
    "ticket_type",
    "requester_id",
    "organization_id",
    "zendesk_created_at",
    "zendesk_updated_at",
    "ticket_url",
    "assignee_group_id",
    "satisfaction_rating",
    "requester_name",
    "requester_email",
    "assignee_group",
    "solved_at",
    "RVENDOR",
)
# Sandbox gateway defaults.
INTACCT_SANDBOX_PATH = "/ia/xml/xmlgw.phtml"
INTACCT_SANDBOX_SESSION_TIMEOUT_S = 3_600.0
INTACCT_SANDBOX_GMT_OFFSET = "-08:00"
INTACCT_SANDBOX_RESULT_ID_TTL_S = 600.0


# --- Zendesk client and sandbox (owned by the Zendesk layer) ---
ZENDESK_API_PREFIX = "/api/v2"
ZENDESK_TIMEOUT_S = 30.0
# Overall limit for one HTTP request, however the server paces its bytes.
ZENDESK_REQUEST_DEADLINE_S = 90.0
# Bodies larger than this (after decompression) are refused; a 1,000-ticket export page
# is a few MiB.
ZENDESK_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
ZENDESK_RETRY_BUDGET_S = 120.0  # longer waits surface as ZendeskRateLimited for Dagster
ZENDESK_DEFAULT_RETRY_AFTER_S = 60.0  # a 429 without Retry-After: wait out a full window
ZENDESK_BACKOFF_INITIAL_S = 0.5
ZENDESK_BACKOFF_MAX_S = 30.0
ZENDESK_BACKOFF_JITTER_S = 0.5
ZENDESK_LOW_REMAINING_FRACTION = 0.1  # below this share of the limit, pace requests
ZENDESK_MAX_PACE_SLEEP_S = 5.0
ZENDESK_MAX_BATCH = 100  # show_many / create_many / update_many / destroy_many
ZENDESK_MAX_JOBS_IN_FLIGHT = 30
# Organizations written per client call; each slice's outcome is recorded before the next
# is sent, so a failure late in a run keeps what was confirmed. A slice fills the 30 jobs
# Zendesk lets run at once: every slice costs at least one job-status read, so at 10 jobs
# a slice a first sync of 10,000 vendors spent 16 reads where 4 do (bench/results.md).
ZENDESK_WRITE_SLICE = ZENDESK_MAX_JOBS_IN_FLIGHT * ZENDESK_MAX_BATCH
ZENDESK_JOB_POLL_INITIAL_S = 1.0
ZENDESK_JOB_POLL_MAX_S = 10.0
ZENDESK_JOB_POLL_FACTOR = 1.5
ZENDESK_JOB_TIMEOUT_S = 1800.0
ZENDESK_PAGE_SIZE = 100
ZENDESK_EXPORT_PER_PAGE = 1000
# Incremental exports leave out what changed in the minute before the request [DOC S7];
# with a margin for the difference between our clock and Zendesk's, an export started
# within this many seconds of our own creates may not show them yet.
ZENDESK_EXPORT_BLIND_S = 60.0 + 60.0
# Up to this many show_many calls the organization lookup never prices the export (which
# costs a count call and at least one page).
ZENDESK_LOOKUP_EXPORT_MIN_CALLS = 2
ZENDESK_INCREMENTAL_LIMIT_PER_MINUTE = 10
ZENDESK_RATE_WINDOW_S = 60.0
ZENDESK_PLAN_LIMITS = {
    "team": 200,
    "growth": 400,
    "professional": 400,
    "enterprise": 700,
    "enterprise_plus": 2500,
}
ZENDESK_OAUTH_AUTHORIZE_PATH = "/oauth/authorizations/new"
ZENDESK_OAUTH_TOKEN_PATH = "/oauth/tokens"
ZENDESK_OAUTH_CODE_TTL_S = 120.0
ZENDESK_OAUTH_DEFAULT_SCOPE = "read write"
ZENDESK_WEBHOOK_MAX_ATTEMPTS = 5
ZENDESK_WEBHOOK_RETRY_BASE_S = 0.5
ZENDESK_WEBHOOK_TIMEOUT_S = 10.0
ZENDESK_EVENT_VERSION = "2022-06-20"
ENV_ZENDESK_OAUTH_CLIENT_ID = "ZENDESK_OAUTH_CLIENT_ID"
ENV_ZENDESK_OAUTH_CLIENT_SECRET = "ZENDESK_OAUTH_CLIENT_SECRET"
ZENDESK_OAUTH_PENDING_FILE = "zendesk_oauth_pending.json"


# --- webhook receiver ---
WEBHOOK_PATH = "/webhooks/zendesk"
WEBHOOK_DEFAULT_HOST = "127.0.0.1"
WEBHOOK_DEFAULT_PORT = 8600
WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
WEBHOOK_SIGNATURE_TOLERANCE_S = 300.0
# A sender that stalls mid-body is cut off (408) instead of holding a slot forever.
WEBHOOK_BODY_READ_TIMEOUT_S = 10.0
# Answer 503 before Zendesk's own request timeout (~10 s, UNCONFIRMED) so it retries; a
# write that still commits later is harmless, the retry is then a duplicate.
WEBHOOK_LEDGER_TIMEOUT_S = 8.0
WEBHOOK_LEDGER_THREADS = 8
# Group commit: deliveries arriving while a commit is in flight share the next transaction.
WEBHOOK_BATCH_MAX = 32
WEBHOOK_CONCURRENT_FLUSHES = 2
WEBHOOK_RETRY_AFTER_S = 5
# The inbox id columns are String(128); Zendesk's ids are 26-36 characters.
WEBHOOK_MAX_ID_LENGTH = 128
# Only these request headers are kept with a delivery (never Authorization or cookies).
WEBHOOK_STORED_HEADERS = (
    "content-type",
    "user-agent",
    "x-zendesk-account-id",
    "x-zendesk-webhook-id",
    "x-zendesk-webhook-invocation-id",
    "x-zendesk-webhook-signature-timestamp",
    "x-zendesk-webhook-signature",
)
# uvicorn: short keep-alive, bounded connections and header size against slow clients.
WEBHOOK_TIMEOUT_KEEP_ALIVE_S = 5
WEBHOOK_LIMIT_CONCURRENCY = 512
WEBHOOK_BACKLOG = 2048
WEBHOOK_MAX_HEADER_BYTES = 16 * 1024
WEBHOOK_HEADER_READ_TIMEOUT_S = 10.0
WEBHOOK_GRACEFUL_SHUTDOWN_S = 10

# --- pipeline (Dagster assets, schedules, sensors) ---
ENV_MAPPING_FILE = "ML_CONNECTOR_MAPPING_FILE"
# The documented default mapping that ships with the package.
DEFAULT_MAPPING_FILE = Path(__file__).parent / "sync" / "default_mapping.yaml"
ENV_TICKETS_START_DATE = "ML_CONNECTOR_TICKETS_START_DATE"
ENV_VENDOR_SYNC_CRON = "ML_CONNECTOR_VENDOR_SYNC_CRON"
ENV_TICKET_POLL_CRON = "ML_CONNECTOR_TICKET_POLL_CRON"
ENV_RECONCILE_CRON = "ML_CONNECTOR_RECONCILE_CRON"
ENV_SCHEDULES_RUNNING = "ML_CONNECTOR_SCHEDULES_RUNNING"
ENV_INBOX_SENSOR_INTERVAL_S = "ML_CONNECTOR_INBOX_SENSOR_INTERVAL_S"
DEFAULT_SOURCE_OBJECTS = "VENDOR"
DEFAULT_TICKETS_START_DATE = "2026-01-01"
DEFAULT_VENDOR_SYNC_CRON = "*/15 * * * *"
ENV_STANDING_SYNC_CRON = "ML_CONNECTOR_STANDING_SYNC_CRON"
# Standing refresh: bills and payments changed since the last run, and every party's
# overdue recomputed for today (no Intacct call for what did not change).
DEFAULT_STANDING_SYNC_CRON = "*/15 * * * *"
DEFAULT_TICKET_POLL_CRON = "*/15 * * * *"
DEFAULT_RECONCILE_CRON = "30 2 * * *"
# Webhook runs coalesce: each drains everything pending, and the sensor looks at most once
# per interval, so a busy account gets at most 720 webhook runs a day (2 min latency).
DEFAULT_INBOX_SENSOR_INTERVAL_S = 120
INTACCT_POOL = "intacct_api"
# Larger than any RECORDNO: (t, INTACCT_RECORDNO_MAX) sorts after every record of second t.
INTACCT_RECORDNO_MAX = 2**62
# Vendors gone from a complete read are marked deleted, unless more than this share of the
# staged ones vanished at once (and more than the small number always allowed).
VENDOR_DELETIONS_MAX_FRACTION = 0.2
VENDOR_DELETIONS_ALWAYS_ALLOWED = 10
ZENDESK_POOL = "zendesk_api"
# Step retries for transient API failures (DESIGN.md decision 6): seconds before the first
# retry, doubling after, with jitter.
API_STEP_MAX_RETRIES = 3
API_STEP_RETRY_DELAY_S = 15
# How many times a rate-limited step may be rescheduled with the wait the API asked for.
RATE_LIMIT_MAX_RETRIES = 5
# Inbox drained per claim; the sensor asks for one run per batch of new rows.
INBOX_DRAIN_BATCH = 500
# Asset checks: how old a cursor may be before it is reported stale, and how many open
# quarantine entries are tolerated before a warning.
CURSOR_STALE_AFTER_S = 6 * 3600
QUARANTINE_WARN_THRESHOLD = 0
# Rows shown in the markdown preview of a run's changes.
PREVIEW_ROWS = 25
# Run tag under which the organization checks compare the ledger with every organization
# Zendesk holds (the nightly reconciliation sets it); elsewhere they check the ledger only.
ZENDESK_COMPARISON_TAG = "ml-connector/compare-with-zendesk"

# ---------------------------------------------------------------- Intacct outbound webhooks
# Platform Trigger deliveries (Intacct 2025 R2) are hints: each only wakes the incremental
# vendor read, and nothing a delivery carries is stored (DESIGN decision 13).
INTACCT_WEBHOOK_PATH = "/webhooks/intacct"
ENV_INTACCT_WEBHOOK_CLIENT_ID = "INTACCT_WEBHOOK_CLIENT_ID"
# The key the bearer JWT is verified with: the application's client secret for HS256, or a
# PEM public key for RS256/ES256. UNCONFIRMED which one Sage uses (docs/intacct-webhooks.md).
ENV_INTACCT_WEBHOOK_KEY = "INTACCT_WEBHOOK_KEY"
ENV_INTACCT_WEBHOOK_ALGORITHMS = "INTACCT_WEBHOOK_ALGORITHMS"  # comma-separated
INTACCT_WEBHOOK_DEFAULT_ALGORITHMS = ("HS256",)
INTACCT_WEBHOOK_TRUSTED_CONTEXT_HEADER = "X-Trusted-Context"
# UNCONFIRMED header name of the idempotency key; both common spellings are read.
INTACCT_WEBHOOK_IDEMPOTENCY_HEADERS = ("Idempotency-Key", "X-Idempotency-Key")
# A token issued longer ago than this is stale (a replay); clocks may differ by the leeway.
INTACCT_WEBHOOK_MAX_AGE_S = 300.0
INTACCT_WEBHOOK_LEEWAY_S = 30.0
INTACCT_WEBHOOK_MAX_BODY_BYTES = 256 * 1024
# How often the hint sensor looks for deliveries: the floor of the edit-to-Zendesk latency.
INTACCT_HINT_SENSOR_INTERVAL_S = 2
# Run tags saying why a run was launched (filter the runs list by them).
RUN_TAG_TRIGGER = "ml-connector/trigger"
RUN_TAG_HINTS = "ml-connector/intacct-deliveries"
# The sandbox's application credentials for its outbound webhooks (not secrets: sandbox only).
INTACCT_SANDBOX_TRIGGER_CLIENT_ID = "ml-connector-sandbox.app.sage.com"
INTACCT_SANDBOX_TRIGGER_CLIENT_SECRET = "sandbox-intacct-app-client-secret-0123456789"
# `ml-connector check` warns when Intacct deliveries are configured but none arrived lately.
INTACCT_WEBHOOK_RECENT_HOURS = 24
