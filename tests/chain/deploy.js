// Deploys the real iExec PoCo 6.1.0 on a local chain from the bytecode @iexec/poco publishes
// (nothing is compiled): token mode with its RLC, as on Arbitrum One and Arbitrum Sepolia.
// The order is PoCo's own deployment's (its deploy/0_deploy.ts at v6.1.0) without the CreateX
// factory: plain CREATE from the node's first account.
//
//   RPC_URL=http://127.0.0.1:PORT node deploy.js POCO_DIR   # prints the addresses as JSON
//
// POCO_DIR is the unpacked package (fetch-poco.js). The facets cut into the Diamond are those
// of the Arbitrum deployments (no Boost facets): 14 facets, 98 functions.
const fs = require('fs');
const path = require('path');
const { ethers } = require('ethers');

const POCO = path.resolve(process.argv[2] || 'poco');
const provider = new ethers.JsonRpcProvider(process.env.RPC_URL || 'http://127.0.0.1:8545', undefined, {
  cacheTimeout: -1,
});
const readJson = (p) => JSON.parse(fs.readFileSync(path.join(POCO, p), 'utf8'));

// Compiled by PoCo 6.1.0 and shipped in the package.
function artifact(file, name) {
  const a = readJson(`artifacts/contracts/${file}/${name}.json`);
  return { abi: a.abi, bytecode: a.bytecode, linkReferences: a.linkReferences || {} };
}

// The package has no artifacts for the generic Diamond facets, DiamondInit or RLC: their
// creation bytecode is the one its Arbitrum Sepolia deployment records.
function deployed(name) {
  const d = readJson(`deployments/arbitrumSepolia/${name}.json`);
  const abi = d.abi || readJson('abis/human-readable-abis/rlc-faucet-contract/contracts/RLC.sol/RLC.json');
  return { abi, bytecode: d.bytecode, linkReferences: {} };
}

// Library addresses written over the placeholders at the offsets the artifact lists.
function link(art, libs) {
  let code = art.bytecode.slice(2);
  for (const [file, names] of Object.entries(art.linkReferences)) {
    for (const [name, refs] of Object.entries(names)) {
      const at = libs[`${file}:${name}`];
      if (!at) throw new Error(`no address for library ${file}:${name}`);
      for (const { start, length } of refs) {
        code = code.slice(0, start * 2) + at.slice(2).toLowerCase() + code.slice((start + length) * 2);
      }
    }
  }
  return `0x${code}`;
}

async function deploy(signer, art, args = [], libs = {}) {
  const c = await new ethers.ContractFactory(art.abi, link(art, libs), signer).deploy(...args);
  await c.deploymentTransaction().wait();
  return c.getAddress();
}

function selectors(abi) {
  const fns = new ethers.Interface(abi).fragments.filter((f) => f.type === 'function').map((f) => f.selector);
  for (const x of abi) {
    if (x.type === 'receive') fns.push('0x00000000');
    if (x.type === 'fallback') fns.push('0xffffffff');
  }
  return fns;
}

async function main() {
  const deployer = await provider.getSigner(0);
  const { chainId } = await provider.getNetwork();
  const out = { chainId: Number(chainId) };
  out.RLC = await deploy(deployer, deployed('RLC'));

  const init = deployed('DiamondInit');
  const initAt = await deploy(deployer, init);
  const cuts = [];
  for (const name of ['DiamondCutFacet', 'DiamondLoupeFacet', 'OwnershipFacet']) {
    const art = deployed(name);
    cuts.push({ facetAddress: await deploy(deployer, art), action: 0, functionSelectors: selectors(art.abi) });
  }
  const initCalldata = new ethers.Interface(init.abi).encodeFunctionData('init', []);
  out.Diamond = await deploy(deployer, artifact('Diamond.sol', 'Diamond'), [
    cuts,
    { owner: await deployer.getAddress(), init: initAt, initCalldata },
  ]);
  const abi = [
    ...artifact('IexecInterfaceToken.sol', 'IexecInterfaceToken').abi,
    ...deployed('DiamondLoupeFacet').abi,
    ...deployed('DiamondCutFacet').abi,
  ].filter((x) => x.type !== 'constructor');
  const iexec = new ethers.Contract(out.Diamond, abi, deployer);

  const lib = artifact('libs/IexecLibOrders_v5.sol', 'IexecLibOrders_v5');
  // Its ABI has enum-typed parameters ethers cannot read; only its bytecode is needed.
  const libs = { 'contracts/libs/IexecLibOrders_v5.sol:IexecLibOrders_v5': await deploy(deployer, { ...lib, abi: [] }) };
  for (const name of [
    'IexecAccessorsABILegacyFacet',
    'IexecCategoryManagerFacet',
    'IexecConfigurationExtraFacet',
    'IexecConfigurationFacet',
    'IexecERC20Facet',
    'IexecEscrowTokenFacet',
    'IexecOrderManagementFacet',
    'IexecPoco1Facet',
    'IexecPoco2Facet',
    'IexecPocoAccessorsFacet',
    'IexecRelayFacet',
  ]) {
    const art = artifact(`facets/${name}.sol`, name);
    const at = await deploy(deployer, art, [], libs);
    const present = new Set((await iexec.facets()).flatMap((f) => f.functionSelectors));
    const add = selectors(art.abi).filter((s) => !present.has(s));
    await (await iexec.diamondCut([{ facetAddress: at, action: 0, functionSelectors: add }], ethers.ZeroAddress, '0x')).wait();
  }
  const facets = await iexec.facets();
  out.facets = facets.length;
  out.functions = facets.reduce((n, f) => n + f.functionSelectors.length, 0);

  for (const [key, file, name] of [
    ['app', 'registries/apps/AppRegistry.sol', 'AppRegistry'],
    ['dataset', 'registries/datasets/DatasetRegistry.sol', 'DatasetRegistry'],
    ['workerpool', 'registries/workerpools/WorkerpoolRegistry.sol', 'WorkerpoolRegistry'],
  ]) {
    const art = artifact(file, name);
    out[name] = await deploy(deployer, art);
    const reg = new ethers.Contract(out[name], art.abi, deployer);
    await (await reg.initialize(ethers.ZeroAddress)).wait();
    await (await reg.setBaseURI(`https://nfts-metadata.iex.ec/${key}/${chainId}/`)).wait();
  }
  await (
    await iexec.configure(out.RLC, 'Staked RLC', 'SRLC', 9, out.AppRegistry, out.DatasetRegistry, out.WorkerpoolRegistry, ethers.ZeroAddress)
  ).wait();
  // PoCo's categories (its config/config.json): XS 300 s … XL 36000 s.
  for (const [name, ref] of [['XS', 300], ['S', 1200], ['M', 3600], ['L', 10800], ['XL', 36000]]) {
    await (await iexec.createCategory(name, '""', ref)).wait();
  }
  const d = await iexec.domain();
  out.domain = { name: d.name, version: d.version, chainId: Number(d.chainId), verifyingContract: d.verifyingContract };
  out.eip712domain_separator = await iexec.eip712domain_separator();
  if (ethers.TypedDataEncoder.hashDomain(out.domain) !== out.eip712domain_separator) {
    throw new Error('the domain separator is not the EIP-712 hash of domain()');
  }
  out.teebroker = await iexec.teebroker();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
