"""The Calico inputs of the corpus scenarios that come without an ``input.yaml``.

Role: 14 of the corpus folders were rendered by Calico tests that build their inputs in code
(projectcalico/calico ``confd/tests/*_test.go``: ``TestBGPPeerPassword``,
``TestNodeMeshBGPPassword``, ``TestSourceAddrGracefulRestart``, ``TestLocalBGPPeer``,
``TestBGPFilterDeletion``, and the steps of ``mesh/restart-time`` and ``bgpfilter/node_mesh``).
This module restates those inputs (the ``mock_data/calicoctl/<name>/input.yaml`` files the
tests apply, and the secrets, endpoint statuses and changes each step makes) so that
``calico_confd_model.expected`` can work out what each folder must hold, as for the others.

Data flow: ``inline_scenario(folder, parent_resources) -> Scenario | None``.
"""

from __future__ import annotations

from typing import Any

from calico_confd_model import Scenario, Workload, load_yaml, merge

# mock_data/calicoctl/password/input.yaml (rendered for node1), after the mesh is turned
# off (the shell harness's turn_mesh_off in test_bgp_password)
_PASSWORD = """
kind: BGPConfiguration
metadata: {name: default}
spec: {nodeToNodeMeshEnabled: false}
---
kind: Node
metadata: {name: node1, labels: {node: "yes"}}
spec: {bgp: {ipv4Address: 10.24.0.1/24}}
---
kind: Node
metadata: {name: node2, labels: {node: "yes"}}
spec: {bgp: {ipv4Address: 10.24.0.2/24}}
---
kind: Node
metadata: {name: node3, labels: {node: "yes"}}
spec: {bgp: {ipv4Address: 10.24.0.3/24}}
---
kind: Node
metadata: {name: node4, labels: {node: "yes"}}
spec: {bgp: {ipv4Address: 10.24.0.4/24}}
---
kind: BGPPeer
metadata: {name: bgppeer-1}
spec:
  nodeSelector: has(node)
  peerIP: 10.24.0.2
  asNumber: 64512
  password: {secretKeyRef: {name: my-secrets-1, key: a}}
---
kind: BGPPeer
metadata: {name: bgppeer-2}
spec:
  nodeSelector: has(node)
  peerIP: 10.24.0.3
  asNumber: 64512
  password: {secretKeyRef: {name: my-secrets-1, key: b}}
---
kind: BGPPeer
metadata: {name: bgppeer-3}
spec:
  node: node1
  peerIP: 10.24.10.10
  asNumber: 64512
  password: {secretKeyRef: {name: my-secrets-2, key: c}}
"""

# mock_data/calicoctl/mesh_password/input.yaml
_MESH_PASSWORD = """
kind: BGPConfiguration
metadata: {name: default}
spec:
  logSeverityScreen: Info
  nodeToNodeMeshEnabled: true
  nodeMeshPassword: {secretKeyRef: {name: my-secrets-1, key: a}}
---
kind: Node
metadata: {name: kube-master}
spec: {bgp: {ipv4Address: 10.192.0.2/16, ipv6Address: "2001::103/64"}}
---
kind: Node
metadata: {name: kube-node-1}
spec: {bgp: {ipv4Address: 10.192.0.3/16, ipv6Address: "2001::102/64"}}
---
kind: Node
metadata: {name: kube-node-2}
spec: {bgp: {ipv4Address: 10.192.0.4/16, ipv6Address: "2001::104/64"}}
---
kind: IPPool
metadata: {name: ippool-1}
spec: {cidr: 192.168.0.0/16, ipipMode: Never, natOutgoing: true}
---
kind: IPPool
metadata: {name: ippool-2}
spec: {cidr: "2002::/64", ipipMode: Never, vxlanMode: Never, natOutgoing: true}
"""

# mock_data/calicoctl/sourceaddr_gracefulrestart/input.yaml (rendered for node1)
_SOURCE_ADDRESS = """
kind: BGPConfiguration
metadata: {name: default}
spec: {nodeToNodeMeshEnabled: false}
---
kind: Node
metadata: {name: node1}
spec: {bgp: {ipv4Address: 172.17.0.5/24}}
---
kind: Node
metadata: {name: node2}
spec: {bgp: {ipv4Address: 172.17.0.6/24}}
---
kind: BGPPeer
metadata: {name: bgppeer-1}
spec: {node: node1, peerIP: 172.17.0.6, asNumber: 64512}
"""
# step 2 sets sourceAddress None, step 3 adds maxRestartTime 10s
_SOURCE_ADDRESS_STEP3 = """
kind: BGPPeer
metadata: {name: bgppeer-1}
spec: {node: node1, peerIP: 172.17.0.6, asNumber: 64512, sourceAddress: None,
       maxRestartTime: 10s}
"""

# mock_data/calicoctl/local_bgp_peer/input.yaml
_LOCAL_BGP_PEER = """
kind: BGPConfiguration
metadata: {name: default}
spec: {programClusterRoutes: Enabled, nodeToNodeMeshEnabled: false}
---
kind: Node
metadata: {name: kube-master, labels: {global-peer: "yes"}}
spec: {bgp: {ipv4Address: 10.192.0.2/16, ipv6Address: "2001::102/64"}}
---
kind: Node
metadata: {name: kube-node-1, labels: {global-peer: "yes"}}
spec: {bgp: {ipv4Address: 10.192.0.3/16, ipv6Address: "2001::103/64"}}
---
kind: Node
metadata: {name: kube-node-2, labels: {node-peer: "yes"}}
spec: {bgp: {ipv4Address: 10.192.0.4/16, ipv6Address: "2001::104/64"}}
---
kind: BGPFilter
metadata: {name: import-only-filter}
spec:
  importV4: [{action: Accept, matchOperator: In, cidr: 44.0.0.0/16}]
  importV6: [{action: Accept, matchOperator: In, cidr: "5000::0/64"}]
---
kind: BGPPeer
metadata: {name: test-global-peer-with-filter}
spec:
  localWorkloadSelector: app == 'calico-bird-0'
  asNumber: 64516
  localASNumber: 65002
  filters: [import-only-filter]
---
kind: BGPPeer
metadata: {name: test-node-peer-with-filter}
spec:
  localWorkloadSelector: app == 'calico-bird-0'
  node: kube-master
  asNumber: 64517
  localASNumber: 65001
  filters: [import-only-filter]
"""
# TestLocalBGPPeer's endpoint statuses
_LOCAL_WORKLOADS = (
    Workload(
        "test-global-peer-with-filter",
        ("192.168.162.134", "fd00:10:244:0:586d:4461:e980:a284"),
    ),
    Workload(
        "test-node-peer-with-filter",
        ("192.168.162.136", "fd00:10:244:0:586d:4461:e980:a286"),
    ),
)

# mock_data/calicoctl/bgpfilter/filter_deletion/input.yaml
_FILTER_DELETION = """
kind: BGPConfiguration
metadata: {name: default}
spec: {programClusterRoutes: Enabled, nodeToNodeMeshEnabled: false}
---
kind: Node
metadata: {name: kube-master, labels: {global-peer: yes}}
spec: {bgp: {ipv4Address: 10.192.0.2/16, ipv6Address: "2001::102/64"}}
---
kind: Node
metadata: {name: kube-node-1, labels: {global-peer: yes}}
spec: {bgp: {ipv4Address: 10.192.0.3/16, ipv6Address: "2001::103/64"}}
---
kind: Node
metadata: {name: kube-node-2, labels: {global-peer: yes}}
spec: {bgp: {ipv4Address: 10.192.0.4/16, ipv6Address: "2001::104/64"}}
---
kind: BGPFilter
metadata: {name: test-filter}
spec:
  exportV4:
    - {action: Accept, matchOperator: In, cidr: 77.0.0.0/16}
    - {action: Reject, source: RemotePeers, matchOperator: In, cidr: 77.1.0.0/16}
    - {action: Accept, source: RemotePeers}
    - {action: Reject}
  importV4:
    - {action: Accept, matchOperator: In, cidr: 44.0.0.0/16}
    - {action: Reject, source: RemotePeers, matchOperator: In, cidr: 44.1.0.0/16}
    - {action: Accept, source: RemotePeers}
    - {action: Reject}
  exportV6:
    - {action: Accept, matchOperator: In, cidr: "9000::0/64"}
    - {action: Reject, source: RemotePeers, matchOperator: In, cidr: "9000:1::0/64"}
    - {action: Accept, source: RemotePeers}
    - {action: Reject}
  importV6:
    - {action: Accept, matchOperator: In, cidr: "5000::0/64"}
    - {action: Reject, source: RemotePeers, matchOperator: In, cidr: "5000:1::0/64"}
    - {action: Accept, source: RemotePeers}
    - {action: Reject}
---
kind: BGPPeer
metadata: {name: test-global-peer-with-filter}
spec:
  peerSelector: has(global-peer)
  filters: [test-filter]
"""


def _docs(text: str) -> list[dict[str, Any]]:
    return load_yaml(text)


def _cluster_routes(parent: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """The parent's resources with BGPConfiguration.programClusterRoutes set to ``mode``."""
    changed = []
    for resource in parent:
        if resource["kind"] == "BGPConfiguration" and resource["metadata"]["name"] == "default":
            spec = dict(resource.get("spec") or {})
            spec["programClusterRoutes"] = mode
            changed.append({**resource, "spec": spec})
        else:
            changed.append(resource)
    return changed


def inline_scenario(folder: str, parent: list[dict[str, Any]] | None) -> Scenario | None:
    """The scenario of a corpus folder without ``input.yaml`` (None: not one of them).

    ``parent``: the resources of the parent folder's ``input.yaml``, for a step of it.
    ``block_affinities`` is None where the corpus file came from a run whose block-affinity
    set-up is not recorded (Calico's shell harness gave kube-master its blocks, its Go
    harness ``withoutBlockAffinities()`` does not), so blocks are not checked there.
    """
    password = _docs(_PASSWORD)
    source = _docs(_SOURCE_ADDRESS)
    scenarios = {
        "password/step1": Scenario(password, node="node1"),
        "password/step2": Scenario(
            password, node="node1", secrets={("my-secrets-1", "b"): "password-b"}
        ),
        "password/step4": Scenario(
            password,
            node="node1",
            secrets={("my-secrets-1", "a"): "password-a", ("my-secrets-1", "b"): "password-b"},
        ),
        "password/step5": Scenario(
            password,
            node="node1",
            secrets={
                ("my-secrets-1", "a"): "new-password-a",
                ("my-secrets-1", "b"): "new-password-b",
            },
        ),
        "mesh/password/step1": Scenario(_docs(_MESH_PASSWORD), block_affinities=None),
        "mesh/password/step3": Scenario(
            _docs(_MESH_PASSWORD),
            secrets={("my-secrets-1", "a"): "new-password-a"},
            block_affinities=None,
        ),
        "sourceaddr_gracefulrestart/step1": Scenario(source, node="node1"),
        "sourceaddr_gracefulrestart/step3": Scenario(
            merge(source, _docs(_SOURCE_ADDRESS_STEP3)), node="node1"
        ),
        "explicit_peering/local_bgp_peer": Scenario(
            _docs(_LOCAL_BGP_PEER), workloads=_LOCAL_WORKLOADS, block_affinities=None
        ),
        "bgpfilter/filter_deletion/step1": Scenario(_docs(_FILTER_DELETION), block_affinities=None),
    }
    if folder in scenarios:
        return scenarios[folder]
    if parent is None:
        return None
    # the two "pcr" steps of mesh/restart-time set BGPConfiguration.programClusterRoutes
    if folder == "mesh/restart-time/pcr-enabled":
        return Scenario(_cluster_routes(parent, "Enabled"), block_affinities=None)
    if folder == "mesh/restart-time/pcr-ipip-only":
        return Scenario(_cluster_routes(parent, "EnabledIPIPOnly"), block_affinities=None)
    # bgpfilter/node_mesh's priority steps change the normal route priority only, which
    # the model does not check: the parent's peers and pools stand
    if folder.startswith("bgpfilter/node_mesh/priority"):
        return Scenario(parent, block_affinities=None)
    return None
