# Sourced by test/cluster/run.sh and sentinel.sh: start_servers URL [LINE]
# starts the three private httpd (event, worker, prefork) on $base+1..3, each in
# $work/sN with its own copy of the module (CLUSTER_MODULE, default the
# tree's; CLUSTER_HTTPD, default /usr/sbin/apache2, runs them), from
# httpd.conf.in with SSECluster URL (and LINE after it); sets $ports.
# On a failure it keeps the logs (keep=1) and exits 2.
start_servers() {
    local url=$1 line=${2:-} i=0 mpm port dir root
    ports=""
    for mpm in event worker prefork; do
        i=$((i + 1))
        port=$((base + i))
        dir="$work/s$i"
        mkdir -p "$dir"
        sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@MPM@|$mpm|g" \
            -e "s|@TOP@|$top|g" -e "s|@PREFIX@|$prefix|g" \
            -e "s|^SSECluster .*|SSECluster $url${line:+\\n$line}|" \
            "$here/httpd.conf.in" > "$dir/httpd.conf"
        cp "${CLUSTER_MODULE:-$top/mod_sse.so}" "$dir/mod_sse.so"
        root=""
        if [ "$(id -u)" = 0 ]; then root=-DRUN_AS_ROOT; chown nobody "$dir"; fi
        "${CLUSTER_HTTPD:-/usr/sbin/apache2}" -f "$dir/httpd.conf" $root -k start || { keep=1; exit 2; }
        ports="$ports $port"
    done
}
