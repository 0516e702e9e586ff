// Only `hardhat node` uses this: no sources, nothing compiled. Chain id 31337 and hardhat's
// default accounts (mnemonic "test test test test test test test test test test test junk").
module.exports = { networks: { hardhat: { chainId: 31337 } } };
