-- Reports users file about content or accounts, for this instance's admins
-- (social.coves.admin.submitReport; reading them: docs/operations.md).
CREATE TABLE admin_reports (
    id            bigserial PRIMARY KEY,
    reporter_did  text NOT NULL,
    target_uri    text NOT NULL,
    target_type   text NOT NULL CHECK (target_type IN ('post', 'comment', 'community', 'account', 'other')),
    target_did    text NOT NULL,           -- the repo the target lives in
    reason        text NOT NULL CHECK (reason IN ('spam', 'harassment', 'doxing', 'illegal', 'csam', 'other')),
    explanation   text,
    status        text NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'reviewing', 'resolved', 'dismissed')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_reports_open ON admin_reports (created_at) WHERE status IN ('open', 'reviewing');
CREATE INDEX admin_reports_target ON admin_reports (target_uri);
