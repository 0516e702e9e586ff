//! The PoCo contracts' interface the verifier reads: the view functions of the Diamond
//! (`IexecPocoAccessorsFacet`), the TEE contribution call and its events, as `@iexec/poco`
//! 6.1.0 declares them (`contracts/libs/IexecLibCore_v5.sol`,
//! `contracts/facets/IexecPoco2Facet.sol`, `contracts/interfaces/IexecPoco2.sol`). ABI
//! encoding and decoding are `alloy-sol-types`', not ours.

#![allow(missing_docs)]

alloy_sol_types::sol! {
    /// An app, dataset or workerpool in a deal, with its owner and price at match time.
    struct Resource { address pointer; address owner; uint256 price; }

    /// `IexecLibCore_v5.Deal`.
    struct Deal {
        Resource app;
        Resource dataset;
        Resource workerpool;
        uint256 trust;
        uint256 category;
        bytes32 tag;
        address requester;
        address beneficiary;
        address callback;
        string params;
        uint256 startTime;
        uint256 botFirst;
        uint256 botSize;
        uint256 workerStake;
        uint256 schedulerRewardRatio;
        address sponsor;
    }

    /// `IexecLibCore_v5.Task`.
    struct Task {
        uint8 status;
        bytes32 dealid;
        uint256 idx;
        uint256 timeref;
        uint256 contributionDeadline;
        uint256 revealDeadline;
        uint256 finalDeadline;
        bytes32 consensusValue;
        uint256 revealCounter;
        uint256 winnerCounter;
        address[] contributors;
        bytes32 resultDigest;
        bytes results;
        uint256 resultsTimestamp;
        bytes resultsCallback;
    }

    /// `IexecLibCore_v5.Contribution`.
    struct Contribution {
        uint8 status;
        bytes32 resultHash;
        bytes32 resultSeal;
        address enclaveChallenge;
        uint256 weight;
    }

    /// `IexecLibCore_v5.AppInfo` as `viewApp` returns it.
    struct AppInfo {
        address owner;
        string m_appName;
        string m_appType;
        bytes m_appMultiaddr;
        bytes32 m_appChecksum;
        bytes m_appMREnclave;
    }

    function viewTask(bytes32 id) external view returns (Task memory);
    function viewDeal(bytes32 id) external view returns (Deal memory);
    function viewContribution(bytes32 taskid, address worker) external view returns (Contribution memory);
    function viewApp(address app) external view returns (AppInfo memory);
    function teebroker() external view returns (address);

    /// The TEE path's single transaction (`IexecPoco2Facet`).
    function contributeAndFinalize(
        bytes32 _taskid,
        bytes32 _resultDigest,
        bytes _results,
        bytes _resultsCallback,
        address _enclaveChallenge,
        bytes _enclaveSign,
        bytes _authorizationSign
    ) external;

    event TaskFinalize(bytes32 indexed taskid, bytes results);
}

/// `IexecLibCore_v5.TaskStatusEnum`, by name.
pub fn task_status(code: u8) -> &'static str {
    match code {
        0 => "UNSET",
        1 => "ACTIVE",
        2 => "REVEALING",
        3 => "COMPLETED",
        4 => "FAILED",
        _ => "UNKNOWN",
    }
}

/// A chain with iExec's TDX workers: its name, id, a public RPC endpoint and the PoCo
/// Diamond's address (`@iexec/poco` 6.1.0, `deployments/<network>/Diamond.json`).
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// The `--chain` name.
    pub name: &'static str,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// A public JSON-RPC endpoint (any other may be given with `--rpc`).
    pub rpc: &'static str,
    /// The PoCo Diamond.
    pub poco: &'static str,
}

/// Arbitrum Sepolia (testnet) and Arbitrum One.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "arbitrum-sepolia",
        chain_id: 421_614,
        rpc: "https://sepolia-rollup.arbitrum.io/rpc",
        poco: "0xb2157bf2fab286b2a4170e3491ac39770111da3e",
    },
    Preset {
        name: "arbitrum",
        chain_id: 42_161,
        rpc: "https://arb1.arbitrum.io/rpc",
        poco: "0x098bfcb1e50ebca0baa92c12ea0c3f045a1ad9f0",
    },
];

/// The preset of that name.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}
