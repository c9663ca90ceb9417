# The course's aws-cli commands (sections "Creating the VPC and Network resources" to "Create
# The Compute Resources"), every resource in the course's order, as the course has them: it
# waits for nothing. Sourced by bench-vs-course.sh and bench-latency.sh; not run on its own.
#
# course_infra DIR runs them in DIR against $AWS_ENDPOINT (an emulator or a proxy in front of
# one) with dummy credentials, and leaves NAME, AWS_REGION and KUBERNETES_PUBLIC_ADDRESS set
# for course_pki (course-pki.sh), with worker_addresses asking aws-cli as the course does.

aws() { command aws --endpoint-url "$AWS_ENDPOINT" "$@"; }
export AWS_ACCESS_KEY_ID=groundup AWS_SECRET_ACCESS_KEY=groundup AWS_DEFAULT_REGION=us-east-2

# The course's image (ubuntu-pro-server ... xenial-16.04 ... 20221202) is not in the
# emulator's catalogue; the same lookup asks for its xenial server image instead.
COURSE_IMAGE_NAME=${COURSE_IMAGE_NAME:-ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-20170721}

course_infra() { # dir
  cd "$1" || return
  NAME=k8s-cluster
  AWS_REGION=us-east-2
  VPC_ID=$(aws ec2 create-vpc --cidr-block 172.31.0.0/16 --output text --query 'Vpc.VpcId')
  aws ec2 create-tags --resources "${VPC_ID}" --tags Key=Name,Value=${NAME}
  aws ec2 modify-vpc-attribute --vpc-id "${VPC_ID}" --enable-dns-support '{"Value": true}'
  aws ec2 modify-vpc-attribute --vpc-id "${VPC_ID}" --enable-dns-hostnames '{"Value": true}'
  DHCP_OPTION_SET_ID=$(aws ec2 create-dhcp-options \
    --dhcp-configuration \
    "Key=domain-name,Values=iamyole.uk.internal" \
    "Key=domain-name-servers,Values=AmazonProvidedDNS" \
    --output text --query 'DhcpOptions.DhcpOptionsId')
  aws ec2 create-tags --resources "${DHCP_OPTION_SET_ID}" --tags Key=Name,Value=${NAME}
  aws ec2 associate-dhcp-options --dhcp-options-id "${DHCP_OPTION_SET_ID}" --vpc-id "${VPC_ID}"
  SUBNET_ID=$(aws ec2 create-subnet --vpc-id "${VPC_ID}" --cidr-block 172.31.0.0/24 --output text --query 'Subnet.SubnetId')
  aws ec2 create-tags --resources "${SUBNET_ID}" --tags Key=Name,Value=${NAME}
  INTERNET_GATEWAY_ID=$(aws ec2 create-internet-gateway --output text --query 'InternetGateway.InternetGatewayId')
  aws ec2 create-tags --resources "${INTERNET_GATEWAY_ID}" --tags Key=Name,Value=${NAME}
  aws ec2 attach-internet-gateway --internet-gateway-id "${INTERNET_GATEWAY_ID}" --vpc-id "${VPC_ID}"
  ROUTE_TABLE_ID=$(aws ec2 create-route-table --vpc-id "${VPC_ID}" --output text --query 'RouteTable.RouteTableId')
  aws ec2 create-tags --resources "${ROUTE_TABLE_ID}" --tags Key=Name,Value=${NAME}
  aws ec2 associate-route-table --route-table-id "${ROUTE_TABLE_ID}" --subnet-id "${SUBNET_ID}" >/dev/null
  aws ec2 create-route --route-table-id "${ROUTE_TABLE_ID}" --destination-cidr-block 0.0.0.0/0 --gateway-id "${INTERNET_GATEWAY_ID}" >/dev/null
  SECURITY_GROUP_ID=$(aws ec2 create-security-group --group-name ${NAME} --description "Kubernetes cluster security group" \
    --vpc-id "${VPC_ID}" --output text --query 'GroupId')
  aws ec2 create-tags --resources "${SECURITY_GROUP_ID}" --tags Key=Name,Value=${NAME}
  aws ec2 authorize-security-group-ingress --group-id "${SECURITY_GROUP_ID}" \
    --ip-permissions IpProtocol=tcp,FromPort=2379,ToPort=2380,IpRanges='[{CidrIp=172.31.0.0/24}]' >/dev/null
  aws ec2 authorize-security-group-ingress --group-id "${SECURITY_GROUP_ID}" \
    --ip-permissions IpProtocol=tcp,FromPort=30000,ToPort=32767,IpRanges='[{CidrIp=172.31.0.0/24}]' >/dev/null
  aws ec2 authorize-security-group-ingress --group-id "${SECURITY_GROUP_ID}" --protocol tcp --port 6443 --cidr 0.0.0.0/0 >/dev/null
  aws ec2 authorize-security-group-ingress --group-id "${SECURITY_GROUP_ID}" --protocol tcp --port 22 --cidr 0.0.0.0/0 >/dev/null
  aws ec2 authorize-security-group-ingress --group-id "${SECURITY_GROUP_ID}" --protocol icmp --port -1 --cidr 0.0.0.0/0 >/dev/null
  LOAD_BALANCER_ARN=$(aws elbv2 create-load-balancer --name ${NAME} --subnets "${SUBNET_ID}" --scheme internet-facing \
    --type network --output text --query 'LoadBalancers[].LoadBalancerArn')
  TARGET_GROUP_ARN=$(aws elbv2 create-target-group --name ${NAME} --protocol TCP --port 6443 --vpc-id "${VPC_ID}" \
    --target-type ip --output text --query 'TargetGroups[].TargetGroupArn')
  aws elbv2 register-targets --target-group-arn "${TARGET_GROUP_ARN}" --targets Id=172.31.0.1{0,1,2}
  aws elbv2 create-listener --load-balancer-arn "${LOAD_BALANCER_ARN}" --protocol TCP --port 6443 \
    --default-actions Type=forward,TargetGroupArn="${TARGET_GROUP_ARN}" --output text --query 'Listeners[].ListenerArn' >/dev/null
  KUBERNETES_PUBLIC_ADDRESS=$(aws elbv2 describe-load-balancers --load-balancer-arns "${LOAD_BALANCER_ARN}" \
    --output text --query 'LoadBalancers[].DNSName')
  IMAGE_ID=$(aws ec2 describe-images --owners 099720109477 \
    --filters 'Name=root-device-type,Values=ebs' 'Name=architecture,Values=x86_64' "Name=name,Values=$COURSE_IMAGE_NAME" |
    jq -r '.Images|sort_by(.Name)[-1]|.ImageId')
  mkdir -p ssh
  aws ec2 create-key-pair --key-name ${NAME} --output text --query 'KeyMaterial' >ssh/${NAME}.id_rsa
  chmod 400 ssh/${NAME}.id_rsa
  local i instance_id
  for i in 0 1 2; do
    instance_id=$(aws ec2 run-instances --associate-public-ip-address --image-id "${IMAGE_ID}" --count 1 --key-name ${NAME} \
      --security-group-ids "${SECURITY_GROUP_ID}" --instance-type t2.micro --private-ip-address 172.31.0.1${i} \
      --user-data "name=master-${i}" --subnet-id "${SUBNET_ID}" --output text --query 'Instances[].InstanceId')
    aws ec2 modify-instance-attribute --instance-id "${instance_id}" --no-source-dest-check
    aws ec2 create-tags --resources "${instance_id}" --tags "Key=Name,Value=${NAME}-master-${i}"
  done
  for i in 0 1 2; do
    instance_id=$(aws ec2 run-instances --associate-public-ip-address --image-id "${IMAGE_ID}" --count 1 --key-name ${NAME} \
      --security-group-ids "${SECURITY_GROUP_ID}" --instance-type t2.micro --private-ip-address 172.31.0.2${i} \
      --user-data "name=worker-${i}|pod-cidr=172.20.${i}.0/24" --subnet-id "${SUBNET_ID}" --output text --query 'Instances[].InstanceId')
    aws ec2 modify-instance-attribute --instance-id "${instance_id}" --no-source-dest-check
    aws ec2 create-tags --resources "${instance_id}" --tags "Key=Name,Value=${NAME}-worker-${i}"
  done
}

worker_addresses() { # i: the course's two lookups for the worker's kubelet certificate
  local instance="${NAME}-worker-$1" external_ip internal_ip
  external_ip=$(aws ec2 describe-instances --filters "Name=tag:Name,Values=${instance}" \
    --output text --query 'Reservations[].Instances[].PublicIpAddress')
  internal_ip=$(aws ec2 describe-instances --filters "Name=tag:Name,Values=${instance}" \
    --output text --query 'Reservations[].Instances[].PrivateIpAddress')
  echo "$external_ip $internal_ip"
}

# The course end to end: its infrastructure, then its PKI (in DIR/ca-authority, as it does).
course_all() { # dir
  (course_infra "$1" && mkdir -p "$1/ca-authority" && course_pki "$1/ca-authority")
}
