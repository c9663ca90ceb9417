# The course's PKI commands (section "Creating the Self-Signed Certificate and General TLS
# Certificate"), with cfssl/cfssljson as the course runs them, one after another and in its
# order. Sourced by bench-pki.sh and bench-vs-course.sh; not run on its own.
#
# course_pki DIR makes the CA and the course's 10 certificates in DIR. It needs NAME,
# AWS_REGION and KUBERNETES_PUBLIC_ADDRESS, and a function `worker_addresses I` that prints
# worker I's external and internal IP (the course asks aws-cli; bench-pki.sh, offline, has
# them fixed).

course_csr() { # name CN O [hosts]
  local names='"names":[{"C":"UK","L":"England","O":"%s","OU":"DEVOPS","ST":"London"}]'
  printf '{"CN":"%s","key":{"algo":"rsa","size":2048},%s%s}' "$2" "$(printf "$names" "$3")" "${4:+,\"hosts\":[$4]}" >"$1-csr.json"
}

course_gencert() { # name [extra cfssl flags]
  local name=$1
  shift
  cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json "$@" -profile=kubernetes \
    "$name-csr.json" 2>/dev/null | cfssljson -bare "$name"
}

course_pki() ( # dir
  cd "$1"
  cat >ca-config.json <<'JSON'
{"signing":{"default":{"expiry":"8760h"},"profiles":{"kubernetes":{"usages":["signing","key encipherment","server auth","client auth"],"expiry":"8760h"}}}}
JSON
  course_csr ca Kubernetes Ytech
  cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca
  local hosts='"127.0.0.1","172.31.0.10","172.31.0.11","172.31.0.12","ip-172-31-0-10","ip-172-31-0-11","ip-172-31-0-12"'
  hosts+=",\"ip-172-31-0-10.$AWS_REGION.compute.internal\",\"ip-172-31-0-11.$AWS_REGION.compute.internal\",\"ip-172-31-0-12.$AWS_REGION.compute.internal\""
  hosts+=",\"$KUBERNETES_PUBLIC_ADDRESS\",\"kubernetes\",\"kubernetes.default\",\"kubernetes.default.svc\",\"kubernetes.default.svc.cluster\",\"kubernetes.default.svc.cluster.local\""
  course_csr master-kubernetes kubernetes Ytech "$hosts"
  course_gencert master-kubernetes
  course_csr kube-scheduler system:kube-scheduler system:kube-scheduler
  course_gencert kube-scheduler
  course_csr kube-proxy system:kube-proxy system:node-proxier
  course_gencert kube-proxy
  course_csr kube-controller-manager system:kube-controller-manager system:kube-controller-manager
  course_gencert kube-controller-manager
  local i addresses
  for i in 0 1 2; do
    course_csr "$NAME-worker-$i" "system:node:ip-172-31-0-2$i" system:nodes
    addresses=$(worker_addresses "$i")
    course_gencert "$NAME-worker-$i" -hostname="ip-172-31-0-2$i,${addresses% *},${addresses#* }"
  done
  course_csr admin admin system:masters
  course_gencert admin
  course_csr service-account service-accounts Kubernetes
  course_gencert service-account
)
