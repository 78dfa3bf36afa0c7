# nginx.sh - run Debian's nginx as the current user for a test or a
# benchmark, on a configuration file of ours, in a directory of its own.
#
# Source it, then:
#   nginx_run DIR CONF [WORKERS]
#       writes DIR/nginx.conf (no daemon, pid, logs and temporary paths all
#       in DIR, `include CONF;` in its http block) and starts nginx in the
#       background; sets NGINX_PID. The caller waits for it to answer (its
#       own probe: http or https, which path) and stops it by that PID.
#   nginx_stop           SIGTERM to NGINX_PID and wait for it.
# The error log is DIR/error.log. Nothing here stops any other process.

NGINX_PID=${NGINX_PID:-}

nginx_run() {
  nginx_dir_=$1
  mkdir -p "$nginx_dir_/logs"
  cat >"$nginx_dir_/nginx.conf" <<CONF
daemon off;
worker_processes ${3:-1};
pid $nginx_dir_/nginx.pid;
error_log $nginx_dir_/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $nginx_dir_/body;
  proxy_temp_path $nginx_dir_/proxy;
  fastcgi_temp_path $nginx_dir_/fastcgi;
  uwsgi_temp_path $nginx_dir_/uwsgi;
  scgi_temp_path $nginx_dir_/scgi;
  include $2;
}
CONF
  nginx -p "$nginx_dir_" -e "$nginx_dir_/error.log" \
    -c "$nginx_dir_/nginx.conf" &
  NGINX_PID=$!
}

nginx_stop() {
  if [ -n "$NGINX_PID" ]; then
    kill -TERM "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=
  fi
}
