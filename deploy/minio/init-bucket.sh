#!/bin/sh
# Creates the video bucket (private) and the services' MinIO user with a policy limited to that
# bucket (idempotent). Runs in the minio/mc image (compose: minio-init).
#   MINIO_URL, MINIO_ROOT_USER, MINIO_ROOT_PASSWORD   the MinIO server and its admin
#   BUCKET                                            the bucket (OPENV_S3_BUCKET)
#   SERVICE_ACCESS_KEY, SERVICE_SECRET_KEY            the services' credentials (OPENV_S3_*)
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${SERVICE_ACCESS_KEY:?}" "${SERVICE_SECRET_KEY:?}"
BUCKET="${BUCKET:-openv-videos}"

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
# `attach` fails when the policy is already attached: only that case is fine.
if ! mc admin policy attach openv openv-services --user "$SERVICE_ACCESS_KEY"; then
  mc admin user info openv "$SERVICE_ACCESS_KEY" | grep -q openv-services
fi
echo "bucket $BUCKET and user $SERVICE_ACCESS_KEY are ready"
