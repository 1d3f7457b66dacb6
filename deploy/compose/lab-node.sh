#!/bin/sh
# One compose lab node: runs `twill agent`, then wires one pod (a network namespace) with the
# CNI plugins from the subnet.env the agent wrote, the way the flannel CNI plugin does (bridge
# cni0 + host-local over FLANNEL_SUBNET, route to FLANNEL_NETWORK, mtu FLANNEL_MTU).
# Env: ETCD (endpoint), GATEWAY (optional default route, the router in the routed profile).
set -eu
[ -n "${GATEWAY:-}" ] && ip route replace default via "$GATEWAY"
mkdir -p /run/flannel /run/lab
twill agent --etcd-endpoints "$ETCD" --iface eth0 --status-addr 0.0.0.0:8475 --node-name "$(hostname)" &
agent=$!
trap 'kill -TERM $agent; wait $agent; exit 0' TERM INT

while [ ! -s /run/flannel/subnet.env ]; do
  kill -0 $agent 2>/dev/null || { echo "lab-node: agent exited" >&2; exit 1; }
  sleep 0.5
done
. /run/flannel/subnet.env
subnet_net=$(echo "$FLANNEL_SUBNET" | awk -F'[./]' '{ printf "%s.%s.%s.%d/%s", $1, $2, $3, $4 - 1, $5 }')
ipmasq=true; [ "$FLANNEL_IPMASQ" = true ] && ipmasq=false

ip netns add pod 2>/dev/null || true
conf=$(cat <<JSON
{"cniVersion":"0.3.1","name":"cbr0","type":"bridge","bridge":"cni0","isGateway":true,"isDefaultGateway":true,
 "ipMasq":$ipmasq,"mtu":$FLANNEL_MTU,"hairpinMode":true,
 "ipam":{"type":"host-local","ranges":[[{"subnet":"$subnet_net"}]],"routes":[{"dst":"$FLANNEL_NETWORK"}],"dataDir":"/run/lab/ipam"}}
JSON
)
result=$(echo "$conf" | CNI_COMMAND=ADD CNI_CONTAINERID=pod CNI_NETNS=/run/netns/pod CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni /usr/lib/cni/bridge) \
  || { echo "lab-node: CNI ADD failed: $result" >&2; exit 1; }
ip -n pod -4 -o addr show dev eth0 | awk '{ split($4, a, "/"); print a[1] }' > /run/lab/pod-ip
echo "lab-node: pod $(cat /run/lab/pod-ip) wired on subnet $FLANNEL_SUBNET"
wait $agent
