#!/bin/sh
# Creates the video bucket (private), the MinIO user of the bridge and storage with a policy
# limited to that bucket, and the gateway's read-only user (idempotent). Runs in the minio/mc
# image (compose: minio-init).
#   MINIO_URL, MINIO_ROOT_USER, MINIO_ROOT_PASSWORD   the MinIO server and its admin
#   BUCKET                                            the bucket (OPENV_S3_BUCKET)
#   SERVICE_ACCESS_KEY, SERVICE_SECRET_KEY            the bridge's and storage's credentials
#   GATEWAY_ACCESS_KEY, GATEWAY_SECRET_KEY            the gateway's: it only presigns playback
#                                                     GETs, so its user may only GET videos/*
#   GATEWAY_POLICY_FILE                               that policy (gateway-readonly-policy.json)
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${SERVICE_ACCESS_KEY:?}" "${SERVICE_SECRET_KEY:?}"
: "${GATEWAY_ACCESS_KEY:?}" "${GATEWAY_SECRET_KEY:?}"
BUCKET="${BUCKET:-openv-videos}"
GATEWAY_POLICY_FILE="${GATEWAY_POLICY_FILE:-/opt/openv/gateway-readonly-policy.json}"
if [ "$GATEWAY_ACCESS_KEY" = "$SERVICE_ACCESS_KEY" ]; then
  echo "GATEWAY_ACCESS_KEY must differ from SERVICE_ACCESS_KEY (the gateway's user is read-only)" >&2
  exit 1
fi

# attach_policy POLICY USER: `attach` fails when the policy is already attached: only that
# case is fine.
attach_policy() {
  if ! mc admin policy attach openv "$1" --user "$2"; then
    mc admin user info openv "$2" | grep -q "$1"
  fi
}

mc alias set openv "${MINIO_URL:-http://minio:9000}" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "openv/$BUCKET"
mc anonymous set none "openv/$BUCKET"

policy_file=/tmp/openv-services-policy.json
cat > "$policy_file" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
      "Resource": ["arn:aws:s3:::$BUCKET"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                 "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
      "Resource": ["arn:aws:s3:::$BUCKET/*"]
    }
  ]
}
JSON
mc admin policy create openv openv-services "$policy_file"
rm -f "$policy_file"
mc admin user add openv "$SERVICE_ACCESS_KEY" "$SERVICE_SECRET_KEY"
attach_policy openv-services "$SERVICE_ACCESS_KEY"

# The gateway's policy names the default bucket: put ours in its place (POSIX sh only, the mc
# image has no sed).
gateway_policy=/tmp/openv-gateway-policy.json
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    *:::openv-videos/*) line="${line%%:::openv-videos/*}:::$BUCKET/${line#*:::openv-videos/}" ;;
  esac
  printf '%s\n' "$line"
done <"$GATEWAY_POLICY_FILE" >"$gateway_policy"
mc admin policy create openv openv-gateway-readonly "$gateway_policy"
rm -f "$gateway_policy"
mc admin user add openv "$GATEWAY_ACCESS_KEY" "$GATEWAY_SECRET_KEY"
attach_policy openv-gateway-readonly "$GATEWAY_ACCESS_KEY"
echo "bucket $BUCKET, user $SERVICE_ACCESS_KEY and read-only user $GATEWAY_ACCESS_KEY are ready"
