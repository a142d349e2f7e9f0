// Type tests for WanVae's public typings (STYLE §6): compiled by `npm run test:types`, never run.
import { WanVae, type DecodedVideo, type Latent, type RgbImage, type VideoTensor, type WanVaeConfig } from 'showo2';

async function vaeTypeChecks(image: RgbImage, video: VideoTensor): Promise<void> {
  const config: WanVaeConfig = { dim: 96, temperal_downsample: [false, true, true] };
  await using vae = await WanVae.load('Wan2.1_VAE.pth', { config });
  const fromImage: Latent = await vae.encode(image);
  const fromFrames: Latent = await vae.encode([image, image, image, image, image]);
  const fromTensor: Latent = await vae.encode(video, { sample: false });
  const decoded: DecodedVideo = await vae.decode(fromImage, { rounding: 'truncate' });
  const frame: RgbImage | undefined = decoded.frames[0];
  const raw: Float32Array = decoded.raw.data;
  const zDim: number = vae.config.z_dim;
  const gone: boolean = vae.disposed;
  vae.dispose();
  console.log(fromFrames, fromTensor, frame, raw, zDim, gone);

  // @ts-expect-error the constructor is private: use WanVae.load()
  new WanVae();
  // @ts-expect-error the reference spells it "temperal"
  await WanVae.load('vae.pth', { config: { temporal_downsample: [true] } });
  // @ts-expect-error rounding is 'round' or 'truncate'
  await vae.decode(fromImage, { rounding: 'floor' });
  // @ts-expect-error latents are float32
  await vae.decode({ data: new Float64Array(16), shape: [1, 16, 1, 1, 1] });
}

void vaeTypeChecks;
